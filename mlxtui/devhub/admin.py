"""Admin routes under /_devhub/: faults, the request log, gated-repo grants."""

from __future__ import annotations

from dataclasses import asdict

from mlxtui.devhub.auth import ApiBase
from mlxtui.devhub.faults import FAULT_KINDS, Fault
from mlxtui.devhub.plumbing import HubError, get_str, repo_not_found
from mlxtui.devhub.store import RepoNotFound

__all__ = ["AdminRoutes"]


class AdminRoutes(ApiBase):
    """Test and operator controls; never counted in the request log."""

    def h_faults_list(self) -> None:
        self.send_json([asdict(f) for f in self.hub.faults.active()])

    def h_faults_add(self) -> None:
        body = self.json_body()
        for key in ("kind", "method", "path_prefix", "message"):
            get_str(body, key, None, what="fault")
        try:
            fault = Fault(
                kind=str(body["kind"]), remaining=int(body.get("n", body.get("remaining", 1))),
                method=body.get("method"), path_prefix=body.get("path_prefix"),
                retry_after=int(body.get("retry_after", 0)), delay=float(body.get("delay", 0)),
                status=int(body.get("status", 500)), message=str(body.get("message", "Injected failure")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise HubError(400, "BadRequest", f"invalid fault: {error}") from None
        if fault.kind not in FAULT_KINDS:
            raise HubError(400, "BadRequest", f"unknown fault kind {fault.kind!r}")
        if not (400 <= fault.status <= 599 and 0 <= fault.delay <= 60 and 0 <= fault.retry_after <= 3600):
            raise HubError(400, "BadRequest", "invalid fault: status 400-599, delay 0-60 s, retry_after 0-3600 s")
        self.hub.faults.add(fault)
        self.send_json(asdict(fault))

    def h_faults_clear(self) -> None:
        self.hub.faults.clear()
        self.send_json({})

    def h_requests_list(self) -> None:
        self.send_json([r._asdict() for r in list(self.hub.requests)])

    def h_requests_clear(self) -> None:
        self.hub.clear_requests()
        self.send_json({})

    def h_grant(self) -> None:
        body = self.json_body()
        repo, user = get_str(body, "repo", what="grant"), get_str(body, "user", what="grant")
        if not user.strip() or len(user) > 96:
            raise HubError(400, "BadRequest", "grant: 'user' must be a user name")
        try:
            self.hub.store.grant_access(repo, user)
        except (KeyError, RepoNotFound):
            raise repo_not_found() from None
        self.send_json({})
