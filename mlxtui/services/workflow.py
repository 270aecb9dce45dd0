"""The model in work: one model carried from step to step (source repo → converted folder → target repo).

The app keeps one `ModelInWork`; each step updates it, the top bar shows it, and a pane reached by its digit
opens on it (Card and Upload on the latest conversion) instead of starting empty.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from mlxtui.format import printable

__all__ = ["ModelInWork", "folder_to_open", "short_path"]


def short_path(path: str | Path) -> str:
    """A local path as a person reads it: the home folder as ~ (also keeps /home/<user> out of shared text)."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home.rstrip("/") + "/")):
        text = "~" + text[len(home.rstrip("/")):]
    return text


@dataclass(frozen=True)
class ModelInWork:
    """What the workflow is doing now. Every field is optional: the thread starts wherever the user starts."""

    source: str | None = None  # the Hub repo id (or local folder) being converted
    folder: str | None = None  # the converted MLX folder
    target: str | None = None  # the repo id it will be uploaded to

    def with_source(self, source: str) -> ModelInWork:
        """A new source starts a new thread (a different model), unless it is the same one again."""
        return self if source == self.source else ModelInWork(source=source)

    def with_folder(self, folder: str, source: str | None = None) -> ModelInWork:
        """A converted folder; its source comes from its provenance file when not given."""
        if source is None:
            from mlxtui.services.modelfolder import read_provenance

            found = (read_provenance(folder) or {}).get("source")
            source = found if isinstance(found, str) else None
        target = self.target if folder == self.folder else None
        return ModelInWork(source=source, folder=folder, target=target)

    def with_target(self, target: str) -> ModelInWork:
        return replace(self, target=target)

    def describe(self) -> str:
        """One line for the top bar: `org/model → ~/…/model-4bit → alice/model-4bit`."""
        steps = [short_path(self.source) if self.source else None, short_path(self.folder) if self.folder else None,
                 self.target]
        shown = [printable(s, newlines=False) for s in steps if s]
        return " → ".join(shown)


def folder_to_open(work: ModelInWork | None, ctx: object) -> str | None:
    """The folder a step reached with nothing open starts on: the model in work's folder when it still
    exists, else the newest conversion in the library (blocking: it reads the models folder)."""
    if work is not None and work.folder and Path(work.folder).is_dir():
        return work.folder
    from mlxtui.services.library import LibraryService

    newest = LibraryService(ctx).newest_conversion()  # type: ignore[arg-type]
    return str(newest.path) if newest is not None else None
