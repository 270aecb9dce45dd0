"""Typed settings in $XDG_CONFIG_HOME/mlxtui/config.toml: read with tomllib, written atomically with tomli-w."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from mlxtui import paths

__all__ = [
    "Settings", "SearchSettings", "ConvertSettings", "ChatSettings", "SettingsLockedError", "load_settings",
    "save_settings",
]


@dataclass
class SearchSettings:
    query: str = ""
    sort: str = "downloads"  # downloads | likes | trending | updated
    author: str = ""
    library: str = ""
    pipeline_tag: str = ""


@dataclass
class ConvertSettings:
    output_dir: str = ""  # empty: paths.models_dir()
    q_bits: int = 4
    q_group_size: int = 64
    q_mode: str = "affine"


@dataclass
class ChatSettings:
    system_prompt: str = ""
    max_tokens: int = 512


@dataclass
class Settings:
    theme: str = "mlxtui-dark"
    endpoint: str = ""  # empty: HF_ENDPOINT or the Hub
    search: SearchSettings = field(default_factory=SearchSettings)
    convert: ConvertSettings = field(default_factory=ConvertSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    #: binding id -> keys, handed to App.set_keymap, e.g. {"app.help" = "f1"}
    keymap: dict[str, str] = field(default_factory=dict)
    #: the file as read: unknown keys and mistyped values are written back as they were
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: why the file must not be written (it failed to parse); None when saving is safe
    locked: str | None = field(default=None, repr=False, compare=False)

    def models_dir(self) -> Path:
        """Where conversions go; a relative output_dir means relative to where mlxtui was started, made
        absolute here so no later working directory (a job's worker runs in its job folder) changes it."""
        if not self.convert.output_dir:
            return paths.models_dir()
        return Path(os.path.abspath(Path(self.convert.output_dir).expanduser()))


def default_path() -> Path:
    return paths.config_dir() / "config.toml"


#: fields of Settings that are bookkeeping, not settings
_INTERNAL = ("raw", "locked")


class SettingsLockedError(OSError):
    """Raised by save_settings when the file on disk failed to parse: it is never overwritten."""


def _from_dict(cls: type, raw: dict[str, Any], problems: list[str], where: str = "") -> Any:
    """Build a dataclass from TOML, keeping defaults for unknown or mistyped keys and noting each."""
    values: dict[str, Any] = {}
    defaults = cls()
    known = {f.name for f in dataclasses.fields(cls) if f.name not in _INTERNAL}
    for key in raw:
        if key not in known:
            problems.append(f"unknown setting {where}{key} (kept as it is)")
    for f in dataclasses.fields(cls):
        if f.name not in raw or f.name in _INTERNAL:
            continue
        value = raw[f.name]
        default = getattr(defaults, f.name)
        if dataclasses.is_dataclass(default):
            if isinstance(value, dict):
                values[f.name] = _from_dict(type(default), value, problems, f"{where}{f.name}.")
            else:
                problems.append(f"[{where}{f.name}] should be a table")
        elif isinstance(default, dict):
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                values[f.name] = dict(value)
            else:
                problems.append(f"{where}{f.name} should be a table of strings")
        elif isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool)):
            values[f.name] = value
        else:
            problems.append(f"{where}{f.name} should be {type(default).__name__}, not {value!r}")
    return cls(**values)


def load_settings(path: Path | None = None) -> tuple[Settings, list[str]]:
    """Read settings; returns (settings, problems). A broken file gives defaults and problems, never an exception."""
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings(), []
    except (UnicodeDecodeError, OSError) as error:
        return Settings(), [f"{path} could not be read ({error}); using defaults. The file was left as it is."]
    import tomllib  # imported here: with no settings file yet, start-up does without it

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        reason = f"{path} could not be read ({error})"
        return Settings(locked=reason), [
            f"{reason}; using defaults. The file was left as it is, and changes are not saved until it is fixed."
        ]
    problems: list[str] = []
    settings = _from_dict(Settings, raw, problems)
    settings.raw = raw
    if problems:
        problems = [f"{path}: " + "; ".join(problems) + " (defaults used for mistyped values; the file keeps them)."]
    return settings, problems


def _merge(raw: dict[str, Any], current: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """What to write: the file's own keys, overlaid with every setting that is valid or was changed.

    A mistyped value in the file is kept unless the app changed that setting from its default.
    """
    out = dict(raw)
    for key, value in current.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict) and key != "keymap":
            sub = raw.get(key) if isinstance(raw.get(key), dict) else {}
            out[key] = _merge(sub, value, default)
        elif key in raw and not _same_type(raw[key], default) and value == default:
            continue  # the user's mistyped value stays for them to fix
        else:
            out[key] = value
    return out


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return isinstance(value, type(default))


def _as_dict(settings: Settings) -> dict[str, Any]:
    data = dataclasses.asdict(settings)
    for key in _INTERNAL:
        data.pop(key, None)
    return data


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically, keeping unknown keys and mistyped values; never over a file that failed to parse."""
    if settings.locked:
        raise SettingsLockedError(f"not saved: {settings.locked}. Fix the file, then restart mlxtui.")
    import tomli_w  # only needed when something changed

    from mlxtui.atomic import write_bytes_atomic

    path = path or default_path()
    data = _merge(settings.raw, _as_dict(settings), _as_dict(Settings()))
    import io

    buffer = io.BytesIO()
    tomli_w.dump(data, buffer)
    write_bytes_atomic(path, buffer.getvalue())
