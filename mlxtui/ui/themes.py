"""Theme files (TOML) turned into textual.theme.Theme; load problems are gathered, never raised."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

from textual.theme import Theme

__all__ = ["DEFAULT_THEME", "THEME_VARIABLE_DEFAULTS", "load_themes"]

DEFAULT_THEME = "mlxtui-dark"

#: app-specific colours; themes may override each, app.tcss refers to them as $variables
THEME_VARIABLE_DEFAULTS: dict[str, str] = {
    "badge-demo": "#1F6FEB",
    "badge-offline": "#F85149",
    "mlx-badge": "#F0883E",
    # lines between columns and sections: grey, which stays grey (bright black) in 16 colours, where $panel
    # becomes black and vanishes on a black background
    "divider": "#41464E",
}

_FIELDS = {f.name for f in fields(Theme)}


def theme_from_file(path: Path) -> Theme:
    """Read one theme file; raises ValueError with a readable reason."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.name}: {error}") from None
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"{path.name}: unknown keys {', '.join(sorted(unknown))}")
    if not isinstance(raw.get("name"), str) or not isinstance(raw.get("primary"), str):
        raise ValueError(f"{path.name}: 'name' and 'primary' are required strings")
    try:
        theme = Theme(**raw)
        theme.to_color_system()  # parses every colour now, not at first paint
    except Exception as error:  # Textual raises several kinds for bad colours
        raise ValueError(f"{path.name}: {error}") from None
    return theme


def load_themes(folders: list[Path]) -> tuple[list[Theme], list[str]]:
    """Load *.toml from each folder in order; later folders override earlier ones by theme name."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_file(path)
            except (ValueError, OSError) as error:
                problems.append(str(error))
                continue
            themes[theme.name] = theme
    return list(themes.values()), problems
