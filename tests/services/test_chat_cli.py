"""`mlxtui chat`: one answer with --prompt (and --json), the stdin loop, and clear failures."""

from __future__ import annotations

import io
import json

from mlxtui.cli import main


def test_prompt_json_prints_the_reply_and_figures(chat_models, capsys):
    code = main(["chat", str(chat_models["danube"]), "--system", "Be kind.", "--prompt", "Hello", "--max-tokens", "8", "--temp", "0.7", "--seed", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"reply", "prompt_tps", "generation_tps", "ttft_s", "generation_tokens", "peak_memory_gb"}
    assert data["generation_tokens"] <= 8 and data["generation_tps"] > 0 and data["ttft_s"] > 0 and data["reply"]
    assert "does not support a system role" in err
    # Same seed, same reply.
    main(["chat", str(chat_models["danube"]), "--system", "Be kind.", "--prompt", "Hello", "--max-tokens", "8", "--temp", "0.7", "--seed", "3", "--json"])
    assert json.loads(capsys.readouterr().out)["reply"] == data["reply"]


def test_prompt_streams_text_and_prints_rates(chat_models, capsys):
    assert main(["chat", str(chat_models["llama"]), "--prompt", "Hi", "--max-tokens", "6"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and "tok/s" in err and "first token" in err


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
