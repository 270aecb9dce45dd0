"""XDG locations for config, data and converted models (the same layout on macOS)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "data_dir", "models_dir", "jobs_dir", "chats_dir", "drafts_dir", "themes_dirs"]


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / default


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "mlxtui"


def data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "mlxtui"


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
