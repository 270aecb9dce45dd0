"""The async service layer: no Textual, no widgets. Each service takes a `Context`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mlxtui.settings import Settings

__all__ = ["Context", "HUB_ENDPOINT", "configure_hub_environment", "resolve_endpoint"]

HUB_ENDPOINT = "https://huggingface.co"


def resolve_endpoint(explicit: str | None, settings: Settings) -> str:
    """--endpoint beats the config file, which beats HF_ENDPOINT, which beats the Hub."""
    endpoint = explicit or settings.endpoint or os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT
    return endpoint.rstrip("/")


def configure_hub_environment(endpoint: str) -> None:
    """Point huggingface_hub at `endpoint` before it is imported (it reads HF_ENDPOINT once, at import).

    Servers other than the real Hub (the local devhub, mirrors) speak plain LFS, not Xet; this is the one
    place that difference is decided (hub-protocol.md, "Xet").
    """
    os.environ["HF_ENDPOINT"] = endpoint
    if endpoint.rstrip("/") != HUB_ENDPOINT:
        os.environ["HF_HUB_DISABLE_XET"] = "1"
    else:
        os.environ.pop("HF_HUB_DISABLE_XET", None)
    # huggingface_hub may already be imported (tests, demo switch): update its module-level constants too.
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.ENDPOINT = endpoint
        constants.HF_HUB_DISABLE_XET = endpoint.rstrip("/") != HUB_ENDPOINT
        constants.HUGGINGFACE_CO_URL_TEMPLATE = endpoint + "/{repo_id}/resolve/{revision}/{filename}"


@dataclass
class Context:
    """What every service needs: where the Hub is, who we are, and the user's settings."""

    endpoint: str = HUB_ENDPOINT
    settings: Settings = field(default_factory=Settings)
    #: an explicit token; None means HF_TOKEN or the standard token file, resolved by huggingface_hub.
    #: Never in repr: Textual's crash screen and tracebacks print objects.
    token: str | None = field(default=None, repr=False)
    demo: bool = False
    #: the demo Hub server when `demo` (kept alive with the context)
    demo_hub: object | None = field(default=None, repr=False, compare=False)

    def use_endpoint(self, endpoint: str, *, demo: bool = False, token: str | None = None) -> None:
        """Switch Hub (e.g. to the demo hub when the real one is unreachable)."""
        self.endpoint = endpoint.rstrip("/")
        self.demo = demo
        if token is not None:
            self.token = token
        configure_hub_environment(self.endpoint)
