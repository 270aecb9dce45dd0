"""Typed settings in $XDG_CONFIG_HOME/mlxtui/config.toml: read with tomllib, written atomically with tomli-w."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from mlxtui import paths

__all__ = ["Settings", "SearchSettings", "ConvertSettings", "ChatSettings", "load_settings", "save_settings"]


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

    def models_dir(self) -> Path:
        return Path(self.convert.output_dir).expanduser() if self.convert.output_dir else paths.models_dir()


def default_path() -> Path:
    return paths.config_dir() / "config.toml"


def _from_dict(cls: type, raw: dict[str, Any], problems: list[str], where: str = "") -> Any:
    """Build a dataclass from TOML, keeping defaults for unknown or mistyped keys and noting each."""
    values: dict[str, Any] = {}
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name not in raw:
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
        return Settings(), [f"{path} could not be read ({error}); using defaults. The file was left as it is."]
    problems: list[str] = []
    settings = _from_dict(Settings, raw, problems)
    if problems:
        problems = [f"{path}: " + "; ".join(problems) + " (defaults used for those)."]
    return settings, problems


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Write atomically: a temporary file beside the target, then os.replace."""
    import tomli_w  # only needed when something changed

    path = path or default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dataclasses.asdict(settings)
    import tempfile  # only when saving: it pulls in shutil and more

    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(data, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
