"""XDG locations for config, data and converted models (the same layout on macOS)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "config_dir", "data_dir", "state_dir", "log_path", "models_dir", "jobs_dir", "chats_dir", "drafts_dir",
    "themes_dirs",
]


def _xdg(var: str, default: str) -> Path:
    """An XDG base directory. The spec says relative values are invalid and must be ignored: a relative
    XDG_DATA_HOME would otherwise mean a different folder for the worker (which runs in its job folder)."""
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "mlxtui"


def data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "mlxtui"


def state_dir() -> Path:
    """Logs and other state worth keeping but not backing up (~/.local/state/mlxtui)."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "mlxtui"


def log_path() -> Path:
    """Where failures are written in full (the screen and the CLI show one line and this path)."""
    return state_dir() / "mlxtui.log"


def models_dir() -> Path:
    """Where conversions go by default, as in the seed workflow: ~/.local/share/models/mlx."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "models" / "mlx"


def jobs_dir() -> Path:
    return data_dir() / "jobs"


def chats_dir() -> Path:
    return data_dir() / "chats"


def drafts_dir() -> Path:
    return data_dir() / "drafts"


def builtin_themes_dir() -> Path:
    """Themes ship inside the wheel (mlxtui/themes) and live at the top of a source checkout."""
    packaged = Path(__file__).parent / "themes"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "themes"


def themes_dirs() -> list[Path]:
    """Built-in themes first, then the user's folder, whose files override built-ins by name."""
    return [builtin_themes_dir(), config_dir() / "themes"]
