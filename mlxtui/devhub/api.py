"""The API origin: the route table and dispatch over the read, write and admin routes."""

from __future__ import annotations

import re
from urllib.parse import unquote

from mlxtui.devhub.admin import AdminRoutes
from mlxtui.devhub.objects import RepoNotFound, repo_key
from mlxtui.devhub.plumbing import HubError, repo_not_found
from mlxtui.devhub.reads import ReadRoutes
from mlxtui.devhub.requestlog import RequestRecord
from mlxtui.devhub.writes import WriteRoutes

__all__ = ["ApiHandler"]

_ADMIN_HANDLERS = {"faults_list", "faults_add", "faults_clear", "requests_list", "requests_clear", "grant"}
_REPO = r"(?P<repo>[^/?#]+/[^/?#]+)"
#: the read routes serve models and datasets alike; a handler then gets the repo's store key (`repo_key`)
_KIND = r"(?P<kind>models|datasets)"
_KINDS = {"models": "model", "datasets": "dataset", None: "model"}


class ApiHandler(ReadRoutes, WriteRoutes, AdminRoutes):
    """The Hub API and resolve URLs."""

    ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        (m, re.compile(p), h)
        for m, p, h in [
            ("GET", r"/api/whoami-v2", "whoami"),
            ("GET", r"/api/models", "list_models"),
            ("GET", rf"/api/{_KIND}/{_REPO}", "model_info"),
            ("GET", rf"/api/{_KIND}/{_REPO}/revision/(?P<rev>[^/]+)", "model_info"),
            ("GET", rf"/api/{_KIND}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", "tree"),
            ("POST", rf"/api/{_KIND}/{_REPO}/paths-info/(?P<rev>[^/]+)", "paths_info"),
            ("GET", rf"/api/{_KIND}/{_REPO}/refs", "refs"),
            ("GET", rf"/api/{_KIND}/{_REPO}/commits/(?P<rev>[^/]+)", "commits"),
            ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
            ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
            ("GET", rf"/api/models/{_REPO}/xet-write-token/(?P<rev>[^/]+)", "xet_token"),
            ("GET", rf"/api/models/{_REPO}/xet-read-token/(?P<rev>[^/]+)", "xet_token"),
            ("PUT", rf"/api/models/{_REPO}/settings", "settings"),
            ("POST", r"/api/repos/create", "create_repo"),
            ("DELETE", r"/api/repos/delete", "delete_repo"),
            ("POST", r"/api/validate-yaml", "validate_yaml"),
            ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", "lfs_batch"),
            ("PUT", r"/_devhub/lfs/(?P<oid>[0-9a-f]{64})", "lfs_put"),
            ("POST", r"/_devhub/lfs/(?P<oid>[0-9a-f]{64})/verify", "lfs_verify"),
            ("HEAD", rf"/(?:(?P<kind>datasets)/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
            ("GET", rf"/(?:(?P<kind>datasets)/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
            ("GET", r"/_devhub/faults", "faults_list"),
            ("POST", r"/_devhub/faults", "faults_add"),
            ("DELETE", r"/_devhub/faults", "faults_clear"),
            ("GET", r"/_devhub/requests", "requests_list"),
            ("DELETE", r"/_devhub/requests", "requests_clear"),
            ("POST", r"/_devhub/grant", "grant"),
        ]
    ]

    def route(self) -> None:
        path = self.raw_path
        admin = path.startswith("/_devhub/") and not path.startswith("/_devhub/lfs/")
        if admin:
            self.require_admin()
        else:
            self.hub.log.add(self.hub.log.api, RequestRecord(self.command, unquote(path), self.query_string))
            self.apply_faults(unquote(path))
        for method, pattern, handler in self.ROUTES:
            match = pattern.fullmatch(path)
            if match and method == self.command:
                if handler in _ADMIN_HANDLERS:
                    self.require_admin()  # again: whatever spelling of the path reached an admin handler
                params = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
                if "repo" in params:
                    params["repo"] = _store_key(params["repo"], params.pop("kind", None))
                getattr(self, f"h_{handler}")(**params)
                return
        if re.match(r"/api/spaces/", path):
            raise HubError(404, "RepoNotFound", "Repository not found (devhub serves models and datasets only)")
        if re.match(r"/api/(models|datasets)/[^/]+(/|$)", path) or re.match(r"/[^/_][^/]*(/[^/]+)?/resolve/", path):
            raise repo_not_found()  # e.g. a canonical one-part id ("gpt2"): devhub repos are owner/name
        raise HubError(404, "NotFound", f"Sorry, we can't find the page you are looking for ({self.command} {path}).")


def _store_key(repo: str, kind: str | None) -> str:
    """The store key of a repo named in a URL; a 404 unless it is a plain owner/name (no other type's key)."""
    try:
        return repo_key(repo, _KINDS[kind])
    except RepoNotFound:
        raise repo_not_found() from None
