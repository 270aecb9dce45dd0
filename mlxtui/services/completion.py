"""Completion as you type for model paths and repo ids: local folders, the library's folders, Hub repo ids.

Blocking (file listings, one Hub search): the UI calls `complete` in a thread. Hub results are kept for a
minute, and a search for a longer prefix is answered from a shorter one's complete result without a request.
"""

from __future__ import annotations

import os
import re
import threading
import time

from mlxtui.services import Context

__all__ = ["ModelCompleter", "complete_path"]

#: what a repo id being typed looks like (owner, owner/, owner/na…)
_REPO_PREFIX = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]*)?")
_HUB_TTL_S = 60.0
_LIBRARY_TTL_S = 15.0
_LIMIT = 20


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "~", "."))


def complete_path(value: str) -> str | None:
    """`value` with the rest of the first matching entry of its folder (folders first, hidden ones only when
    asked for with a dot); None when nothing matches."""
    expanded = os.path.expanduser(value)
    folder, base = os.path.split(expanded)
    try:
        entries = sorted(os.scandir(folder or "."), key=lambda e: (not e.is_dir(), e.name))
    except OSError:
        return None
    for entry in entries:
        if entry.name.startswith(base) and len(entry.name) > len(base) and (base.startswith(".") or not entry.name.startswith(".")):
            return value + entry.name[len(base):]
    return None


class ModelCompleter:
    """Suggests the rest of a model path or repo id. `paths` and `repos` choose what the field takes."""

    def __init__(self, ctx: Context, *, paths: bool = True, repos: bool = True) -> None:
        self.ctx = ctx
        self.paths = paths
        self.repos = repos
        self._hub: dict[tuple[str, str], tuple[float, list[str]]] = {}
        self._library: tuple[float, list[str]] = (0.0, [])
        self._lock = threading.Lock()

    def complete(self, value: str) -> str | None:
        """The whole suggested value (it starts with what was typed, ignoring case for repo ids), or None."""
        if not value.strip() or "\n" in value:
            return None
        if self.paths and _looks_like_path(value):
            for candidate in self._library_paths():
                if candidate.startswith(value) and len(candidate) > len(value):
                    return candidate  # the library's conversions first: usually what is wanted
            return complete_path(value)
        if self.repos and len(value) >= 2 and _REPO_PREFIX.fullmatch(value):
            for repo_id in self._hub_ids(value):
                if repo_id.lower().startswith(value.lower()) and len(repo_id) > len(value):
                    return repo_id
        return None

    def _library_paths(self) -> list[str]:
        """Every library folder as a path and as `~/…`, newest first (read at most every few seconds)."""
        stamp, paths = self._library
        if time.monotonic() - stamp < _LIBRARY_TTL_S:
            return paths
        from mlxtui.services.library import LibraryService
        from mlxtui.services.workflow import short_path

        try:
            folders = [m.path for m in LibraryService(self.ctx).folders()]
        except OSError:
            folders = []
        paths = [p for path in folders for p in (short_path(path), path)]
        self._library = (time.monotonic(), paths)
        return paths

    def _hub_ids(self, prefix: str) -> list[str]:
        key = (self.ctx.endpoint, prefix.lower())
        now = time.monotonic()
        with self._lock:
            for (endpoint, known), (stamp, ids) in self._hub.items():
                # a shorter prefix whose search was complete (under the limit) already holds every answer
                if endpoint == key[0] and key[1].startswith(known) and now - stamp < _HUB_TTL_S and \
                        (known == key[1] or len(ids) < _LIMIT) and ("/" in known) == ("/" in key[1]):
                    return [i for i in ids if i.lower().startswith(key[1])]
        from mlxtui.services.hub import repo_ids_starting

        ids = repo_ids_starting(self.ctx, prefix, limit=_LIMIT)
        with self._lock:
            self._hub[key] = (now, ids)
        return ids
