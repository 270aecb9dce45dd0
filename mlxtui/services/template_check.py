"""The chat-template dry run: render a model's template in a sandbox, bounded in time and memory.

A template is code from a stranger: jinja2's sandbox stops attribute tricks but not a loop of loops, so the
render runs in a child process (this file run as a script, standard library and jinja2 only) with a memory
cap it sets on itself, and is killed after `TIMEOUT_S`. A template that runs over is a finding ("the template
did not finish rendering within 5 s"), never a hang. Inspect and Card both call `chat_template_dry_run`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["TIMEOUT_S", "MEMORY_BYTES", "chat_template_dry_run", "render_in_process"]

#: wall-clock limit of one dry run (both renders); real templates take milliseconds
TIMEOUT_S = 5.0
#: address-space cap of the child (Python, jinja2 and the render); real renders use a few MB
MEMORY_BYTES = 1 << 30
#: characters of the rendered preview kept
PREVIEW_CHARS = 4000
#: characters of an error message kept (a template chooses its own messages)
ERROR_CHARS = 300

_SYSTEM_MARKER = "MLXTUI-SYSTEM-PROBE"
_TOO_BIG = f"the template needs more than {MEMORY_BYTES >> 20} MB to render (it builds too much text)"


def _token_text(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return value if isinstance(value, str) else ""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_in_process(template: str, tokenizer_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dry run itself, unbounded in time: call it only in the child (or on trusted templates).

    Uses jinja2's ImmutableSandboxedEnvironment with the helpers transformers gives templates
    (raise_exception, strftime_now, a tojson that does not escape HTML, loopcontrols).
    Returns {"renders": bool, "system_role": bool | None, "error": str | None, "preview": str}.
    """
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return "26 Jul 2024"  # a fixed date keeps the dry run deterministic

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    tc = tokenizer_config if isinstance(tokenizer_config, dict) else {}
    special = {k: _token_text(tc.get(k)) for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    result: dict[str, Any] = {"renders": False, "system_role": None, "error": None, "preview": ""}
    try:
        compiled = env.from_string(template)
    except (jinja2.exceptions.TemplateError, RecursionError, MemoryError) as error:
        result["error"] = f"the template does not compile: {_cut(str(error), ERROR_CHARS)}"
        return result
    user = [{"role": "user", "content": "Hello"}]
    try:
        result["preview"] = _cut(compiled.render(messages=user, add_generation_prompt=True, **special), PREVIEW_CHARS)
        result["renders"] = True
    except MemoryError:
        result["error"] = _TOO_BIG
        return result
    except Exception as error:  # noqa: BLE001 - any failure of an untrusted template is a finding, not a crash
        result["error"] = f"the template fails on a plain user turn: {_cut(str(error) or type(error).__name__, ERROR_CHARS)}"
        return result
    try:
        text = compiled.render(messages=[{"role": "system", "content": _SYSTEM_MARKER}, *user],
                               add_generation_prompt=True, **special)
    except MemoryError:
        result["error"] = _TOO_BIG
        return result
    except Exception as error:  # noqa: BLE001
        result["system_role"] = False
        result["error"] = _cut(str(error) or type(error).__name__, ERROR_CHARS)
        return result
    result["system_role"] = _SYSTEM_MARKER in text
    if not result["system_role"]:
        result["error"] = "the template drops the system message"
    return result


def _failed(error: str) -> dict[str, Any]:
    return {"renders": False, "system_role": None, "error": error, "preview": ""}


def chat_template_dry_run(template: str, tokenizer_config: dict[str, Any] | None = None, *,
                          timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """Render the template with a system turn and without, in a child process bounded in time and memory.

    Returns {"renders", "system_role", "error", "preview"} like `render_in_process`; a template that runs
    over the time or memory bound gives renders False and an error that says so.
    """
    tc = tokenizer_config if isinstance(tokenizer_config, dict) else {}
    special = {k: tc.get(k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")
               if isinstance(tc.get(k), (str, dict))}
    payload = json.dumps({"template": template, "tokenizer_config": special})
    try:
        done = subprocess.run(
            [sys.executable, "-I", os.path.abspath(__file__)], input=payload, capture_output=True, text=True,
            timeout=timeout, env={"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")},
        )
    except subprocess.TimeoutExpired:
        return _failed(f"the template did not finish rendering within {timeout:g} s (it loops too much to use)")
    except OSError as error:
        return _failed(f"the template could not be checked: {error.strerror or error}")
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    if done.returncode != 0 or not isinstance(result, dict):
        if "MemoryError" in done.stderr or done.returncode < 0:
            return _failed(_TOO_BIG)
        return _failed("the template could not be rendered (the check failed)")
    return result


def _child() -> None:
    """Run as a script: cap memory, read {template, tokenizer_config} from stdin, print the result as JSON."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass  # no RLIMIT_AS here (macOS may refuse it); the time bound still holds
    sys.setrecursionlimit(2000)
    request = json.loads(sys.stdin.read())
    try:
        result = render_in_process(request["template"], request.get("tokenizer_config"))
    except MemoryError:
        print("MemoryError", file=sys.stderr)
        raise SystemExit(3) from None
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    _child()
