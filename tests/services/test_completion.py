"""Completion as you type: local paths, the library's conversions, Hub repo ids (a real devhub)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlxtui.services import Context
from mlxtui.services.completion import ModelCompleter, complete_path
from mlxtui.services.workflow import short_path


def test_paths_complete_folders_first_and_hidden_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "models-b").mkdir()
    (tmp_path / "models-a.txt").write_text("x")
    (tmp_path / ".models-hidden").mkdir()
    assert complete_path(f"{tmp_path}/mod") == f"{tmp_path}/models-b"
    assert complete_path(f"{tmp_path}/.mod") == f"{tmp_path}/.models-hidden"
    assert complete_path(f"{tmp_path}/zzz") is None
    assert complete_path("/no/such/folder/x") is None


def test_the_library_comes_first_also_as_home_relative(make_tiny_model) -> None:
    ctx = Context()
    models = ctx.settings.models_dir()
    models.mkdir(parents=True)
    shutil.copytree(make_tiny_model("tiny"), models / "tiny-4bit")
    completer = ModelCompleter(ctx)
    full = str(models / "tiny-4bit")
    assert completer.complete(full[:-3]) == full
    short = short_path(full)
    if short != full:  # the models dir is under the (test's) home
        assert completer.complete(short[:-3]) == short


def test_repo_ids_complete_from_the_hub_ignoring_case(hub) -> None:
    completer = ModelCompleter(Context(endpoint=hub.url))
    assert completer.complete("h2oai/h2o-danube2-tiny-c") == "h2oai/h2o-danube2-tiny-chat"
    assert completer.complete("H2OAI/h2o-danube2-tiny-c") == "h2oai/h2o-danube2-tiny-chat"
    assert completer.complete("NousResearch/Llama-3-ti") == "NousResearch/Llama-3-tiny-Instruct"
    assert completer.complete("nobody-here/xyz") is None
    assert completer.complete("h2oai/h2o-danube2-tiny-chat") != "h2oai/h2o-danube2-tiny-chat"  # nothing to add
    assert ModelCompleter(Context(endpoint=hub.url), repos=False).complete("h2oai/h2o-danube2-tiny-c") is None


def test_an_unreachable_hub_gives_no_suggestion_and_no_error() -> None:
    assert ModelCompleter(Context(endpoint="http://127.0.0.1:9")).complete("h2oai/h2o") is None


def test_completion_asks_a_failing_hub_once_and_never_waits_out_retries() -> None:
    """huggingface_hub retries a 503 or a dead connection for about 23 s; a suggestion asks once (it held
    quitting the app offline, and every pane test's teardown, until it gave up)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    asked: list[str] = []

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            asked.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        completer = ModelCompleter(Context(endpoint=f"http://127.0.0.1:{server.server_address[1]}"))
        assert completer.complete("h2oai/h2o") is None
    finally:
        server.shutdown()
        server.server_close()
    assert len(asked) == 1 and asked[0].startswith("/api/models?")
