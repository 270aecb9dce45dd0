"""Secrets kept in the devhub root, each readable by its owner only (mode 0600).

tokens.json     user tokens: token -> {"user", "orgs", "role"}
admin-token     the bearer token the /_devhub/ admin routes require
signing-secret  the key of signed CDN and upload URLs; kept, so a download resumed after a restart still works
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from mlxtui.atomic import write_text_atomic

__all__ = ["tighten", "TokenFile", "read_or_create_secret", "new_token", "is_valid_token", "ADMIN_TOKEN_FILE", "SIGNING_SECRET_FILE"]

ADMIN_TOKEN_FILE = "admin-token"
SIGNING_SECRET_FILE = "signing-secret"
_PRIVATE = 0o600


def new_token(prefix: str = "hf_") -> str:
    """A fresh random token (what `mlxtui devhub token` prints when none is given on stdin)."""
    return prefix + secrets.token_urlsafe(30).replace("-", "A").replace("_", "b")


def is_valid_token(token: object) -> bool:
    """8 to 256 printable ASCII characters without spaces: anything else cannot travel in a header intact."""
    return isinstance(token, str) and 8 <= len(token) <= 256 and all(33 <= ord(c) < 127 for c in token)


def tighten(path: Path) -> None:
    """Make an existing secret file readable by its owner only (roots made by older versions were 0644)."""
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            path.chmod(_PRIVATE)
    except FileNotFoundError:
        pass


def read_or_create_secret(path: Path, make=lambda: secrets.token_hex(32)) -> str:
    """The secret stored at `path`, created (0600, atomically, first writer wins) when missing or empty.

    An existing file with looser permissions is tightened to 0600.
    """
    path = Path(path)
    for _ in range(3):
        try:
            value = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            value = ""
        if value:
            tighten(path)
            return value
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _PRIVATE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(make() + "\n")
            try:
                os.link(tmp, path)  # fails when another process created it meanwhile: read theirs instead
            except FileExistsError:
                pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise OSError(f"could not create {path}")


class TokenFile:
    """User tokens in tokens.json (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, tokens: Mapping[str, Mapping[str, Any]]) -> None:
        write_text_atomic(self.path, json.dumps(dict(tokens), indent=1, sort_keys=True), mode=_PRIVATE)

    @staticmethod
    def entry(user: str, orgs: Iterable[str] = (), role: str = "write") -> dict[str, Any]:
        if role not in ("read", "write"):
            raise ValueError("role must be 'read' or 'write'")
        return {"user": str(user), "orgs": [str(o) for o in orgs], "role": role}

    def lookup(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return None
        info = self.read().get(token)
        return info if isinstance(info, dict) and isinstance(info.get("user"), str) else None
