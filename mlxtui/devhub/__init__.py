"""A local, Hugging Face Hub-compatible server (tests, the offline demo, trying uploads safely).

`HubStore` keeps repos on disk; `DevHub` serves them over HTTP to the real huggingface_hub client.
Imports are lazy so that importing this package costs nothing at app start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DevHub", "HubStore"]

if TYPE_CHECKING:
    from mlxtui.devhub.server import DevHub
    from mlxtui.devhub.store import HubStore


def __getattr__(name: str) -> Any:
    if name == "HubStore":
        from mlxtui.devhub.store import HubStore

        return HubStore
    if name == "DevHub":
        from mlxtui.devhub.server import DevHub

        return DevHub
    raise AttributeError(name)
