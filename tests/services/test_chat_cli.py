"""`mlxtui chat`: one answer with --prompt (and --json), the stdin loop, and clear failures."""

from __future__ import annotations

import io
import json

from mlxtui.cli import main
from mlxtui.services.chat_sampling import MIN_RATE_TOKENS


def test_prompt_json_prints_the_reply_and_figures(chat_models, capsys):
    code = main(["chat", str(chat_models["danube"]), "--system", "Be kind.", "--prompt", "Hello", "--max-tokens", "8", "--temp", "0.7", "--seed", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"reply", "prompt_tps", "generation_tps", "ttft_s", "generation_tokens", "peak_memory_gb"}
    assert data["generation_tokens"] <= 8 and data["ttft_s"] > 0 and data["reply"]
    # A rate only when it rests on enough tokens and time (docs/chat.md, "Honest rates"), else null.
    assert data["generation_tps"] is None or (data["generation_tokens"] >= MIN_RATE_TOKENS and data["generation_tps"] > 0)
    assert "does not support a system role" in err
    # Same seed, same reply.
    main(["chat", str(chat_models["danube"]), "--system", "Be kind.", "--prompt", "Hello", "--max-tokens", "8", "--temp", "0.7", "--seed", "3", "--json"])
    assert json.loads(capsys.readouterr().out)["reply"] == data["reply"]


def test_prompt_streams_text_and_prints_rates(chat_models, capsys):
    assert main(["chat", str(chat_models["llama"]), "--prompt", "Hi", "--max-tokens", "6"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and "generation: " in err and "first token" in err


def test_stdin_conversation_until_an_empty_line(chat_models, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\nand again\n\n"))
    assert main(["chat", str(chat_models["llama"]), "--max-tokens", "4"]) == 0
    _, err = capsys.readouterr()
    assert err.count("generation:") == 2


def test_failures_are_one_clear_line(tmp_path, capsys):
    assert main(["chat", str(tmp_path), "--prompt", "hi"]) == 2  # invalid input (docs/troubleshooting.md)
    assert "not an MLX model folder" in capsys.readouterr().err
    assert main(["chat", str(tmp_path), "--prompt", "  "]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert main(["chat", "http://127.0.0.1:9", "--prompt", "hi"]) == 5  # offline
    assert "Can't reach" in capsys.readouterr().err


def test_bad_sampling_values_are_refused_before_the_model_loads(tmp_path, capsys):
    # tmp_path is not a model: had the model been loaded first, the error would be about the folder.
    for flags, word in [(["--temp", "-1"], "temperature"), (["--top-p", "2"], "top_p"), (["--seed", "-1"], "seed"),
                        (["--max-tokens", "0"], "max tokens"), (["--temp", "nan"], "finite")]:
        assert main(["chat", str(tmp_path), "--prompt", "hi", *flags]) == 2, flags
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and word in err and "not an MLX model folder" not in err, err


def test_a_broken_tokenizer_is_one_line_and_exits_cleanly(tmp_path, chat_models, capsys):
    import shutil
    import subprocess
    import sys

    folder = tmp_path / "broken"
    shutil.copytree(chat_models["danube"], folder)
    (folder / "tokenizer.json").write_text('{"model": {')
    done = subprocess.run([sys.executable, "-m", "mlxtui", "chat", str(folder), "--prompt", "hi", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # not 134 (abort) nor a traceback
    assert done.stderr.count("\n") == 1 and "could not load broken" in done.stderr


def test_repeated_runs_never_abort(chat_models):
    # Measured 100 of 100 (docs/chat.md); a few here keep the MLX-thread shutdown honest.
    import subprocess
    import sys

    for _ in range(5):
        done = subprocess.run([sys.executable, "-m", "mlxtui", "chat", str(chat_models["danube"]), "--prompt", "Hello",
                               "--max-tokens", "16", "--json"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        json.loads(done.stdout)


def test_plain_output_is_terminal_safe_and_json_exact(chat_models, capsys):
    import argparse
    import asyncio

    from mlxtui.commands.chat import _chat
    from mlxtui.format import printable
    from mlxtui.services import Context
    from mlxtui.services.chat import ChatService
    from tests.services.test_chat import EVERY_CONTROL, Scripted

    text = f"x{EVERY_CONTROL}y"
    for as_json in (False, True):
        service = ChatService(logits_processors=[Scripted(chat_models["danube"], [text])])
        args = argparse.Namespace(model=str(chat_models["danube"]), system=None, prompt="Hi", max_tokens=100,
                                  temp=None, top_p=None, seed=None, json=as_json, tui=False)
        try:
            assert asyncio.run(_chat(args, Context(), service)) == 0
        finally:
            service.close()
        out = capsys.readouterr().out
        if as_json:
            assert json.loads(out)["reply"] == text
        else:
            assert out == printable(text) + "\n" and "\x1b" not in out


def test_json_says_whether_the_system_prompt_was_folded(chat_models, capsys):
    """Issue 14: the danube template refuses a system turn; the JSON says the prompt was folded, or not."""
    args = ["chat", str(chat_models["danube"]), "--prompt", "Hello", "--max-tokens", "4", "--json"]
    assert main([*args, "--system", "Be kind."]) == 0
    assert json.loads(capsys.readouterr().out)["system_folded"] is True
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["system_folded"] is False
    assert main(["chat", str(chat_models["llama"]), "--system", "Be kind.", "--prompt", "Hi", "--max-tokens", "4",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["system_folded"] is False  # its template takes a system turn


def test_json_without_prompt_is_an_error(chat_models, capsys):
    assert main(["chat", str(chat_models["danube"]), "--json"]) == 2
    err = capsys.readouterr().err
    assert "--json needs --prompt" in err and len(err.strip().splitlines()) == 1


def test_a_demo_model_says_its_weights_are_random(chat_models, tmp_path, capsys):
    import shutil

    from mlxtui.services.modelfolder import RANDOM_WEIGHTS_NOTE

    folder = tmp_path / "demo-4bit"
    shutil.copytree(chat_models["danube"], folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- random-weights\n---\n\n# demo\n")
    assert main(["chat", str(folder), "--prompt", "Hello", "--max-tokens", "4", "--json"]) == 0
    assert RANDOM_WEIGHTS_NOTE in capsys.readouterr().err
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- chat\n---\n\n# trained\n")
    assert main(["chat", str(folder), "--prompt", "Hello", "--max-tokens", "4", "--json"]) == 0
    assert RANDOM_WEIGHTS_NOTE not in capsys.readouterr().err


def test_ctrl_c_at_the_prompt_exits_at_once(chat_models):
    """Ctrl-C at the prompt exits. A thread of asyncio's pool blocked in readline kept `mlxtui chat` alive
    until someone pressed Enter; whether it is reading yet when the signal lands is a race, so without the
    daemon reader this fails often, not always."""
    import os
    import pty
    import signal
    import subprocess

    from tests.process_helpers import foreground

    leader, follower = pty.openpty()  # a terminal on stdin: chat shows its ">>> " prompt, then reads
    process = foreground(["-m", "mlxtui", "chat", str(chat_models["llama"]), "--max-tokens", "4"],
                         stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(follower)
    try:
        assert process.stderr is not None
        err = ""
        while err.count(">>> ") < 2:
            char = process.stderr.read(1)
            assert char, err  # the child ended before its prompt
            err += char
            if err.endswith(">>> ") and err.count(">>> ") == 1:
                os.write(leader, b"Hello\n")
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=30)
        assert process.returncode == 130 and "mlxtui: interrupted" in rest, err + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
