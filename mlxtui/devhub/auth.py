"""Who is asking and what they may see or write: the base of every API route."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlxtui.devhub.plumbing import BaseHandler, HubError, repo_not_found
from mlxtui.devhub.store import RepoNotFound, RevisionNotFound

__all__ = ["Caller", "ApiBase"]


@dataclass
class Caller:
    """Who is asking: None user means anonymous."""

    token: str | None = None
    user: str | None = None
    orgs: list[str] = field(default_factory=list)
    role: str = "read"

    def owns(self, namespace: str) -> bool:
        return self.user is not None and (namespace == self.user or namespace in self.orgs)

    def can_write(self, namespace: str) -> bool:
        return self.role == "write" and self.owns(namespace)


class ApiBase(BaseHandler):
    """Authentication and access checks for the API origin's routes."""

    def caller(self) -> Caller:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return Caller()
        token = header[7:].strip()
        info = self.hub.store.token_info(token) if token else None
        if info is None:
            raise HubError(401, "Unauthorized", "Invalid credentials in Authorization header",
                           body={"error": "Invalid user token"})
        return Caller(token, info["user"], list(info.get("orgs", [])), info.get("role", "read"))

    def base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.hub.url

    def visible(self, meta: dict[str, Any], caller: Caller) -> bool:
        return not meta.get("private") or caller.owns(meta["owner"])

    def may_download(self, meta: dict[str, Any], caller: Caller) -> bool:
        """Whether the caller may fetch the files of a repo it can see (gated: owner or granted users only)."""
        return not meta.get("gated") or caller.owns(meta["owner"]) or (
            caller.user is not None and caller.user in meta.get("granted", [])
        )

    def can_read_files(self, repo: str, caller: Caller) -> bool:
        """Whether the caller could download `repo`'s files (visible, and not gated against them)."""
        try:
            meta = self.hub.store.meta(repo)
        except RepoNotFound:
            return False
        return self.visible(meta, caller) and self.may_download(meta, caller)

    def require_admin(self) -> None:
        """The /_devhub/ admin routes take the admin token (root/admin-token), nothing else."""
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise HubError(401, "Unauthorized", "devhub admin routes need the admin token (see docs/devhub.md)")
        if not self.hub.admin_token_ok(header[7:].strip()):
            raise HubError(403, "Forbidden", "Not the devhub admin token")

    def repo_meta(self, repo: str, caller: Caller) -> dict[str, Any]:
        """meta.json of a repo the caller may see, else 404 RepoNotFound (private repos look absent)."""
        try:
            meta = self.hub.store.meta(repo)
        except RepoNotFound:
            raise repo_not_found() from None
        if not self.visible(meta, caller):
            raise repo_not_found()
        return meta

    def writable_repo(self, repo: str, caller: Caller) -> dict[str, Any]:
        if caller.user is None:
            raise HubError(401, "RepoNotFound", "You must be authenticated to write to this repository")
        meta = self.repo_meta(repo, caller)
        if not caller.can_write(meta["owner"]):
            raise HubError(403, "Forbidden", f"You don't have the rights to write to {repo} "
                           f"({'read-only token' if caller.role != 'write' else 'not your namespace'}).")
        return meta

    def resolve_sha(self, repo: str, rev: str | None) -> str:
        try:
            return self.hub.store.resolve_revision(repo, rev or "main")
        except RevisionNotFound:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}") from None
