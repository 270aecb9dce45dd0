"""The demo Hub as a service: the app and the command line start it here, never by importing mlxtui.devhub."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlxtui.services import Context

__all__ = ["demo_needs_seeding", "launch_demo_hub", "start_demo", "use_demo_hub"]


def demo_needs_seeding() -> bool:
    """Whether the first start will generate the demo models (a few seconds)."""
    from mlxtui.devhub.demo import default_demo_root, is_seeded

    return not is_seeded(default_demo_root())


def launch_demo_hub() -> Any:
    """The shared demo Hub (mlxtui.devhub.daemon): reused when one is running, else started in the
    background; blocking (the first run generates the demo models). It has `.url`, and stops by itself after
    half an hour unused, so URLs a `--demo` command prints stay reachable for the next one."""
    from mlxtui.devhub.daemon import ensure_running
    from mlxtui.devhub.demo import default_demo_root

    return ensure_running(default_demo_root())


def use_demo_hub(ctx: Context, hub: Any) -> None:
    """Point `ctx` (and huggingface_hub) at a running demo Hub with its write token. Main thread only."""
    from mlxtui.devhub.demo import DEMO_WRITE_TOKEN

    ctx.demo_hub = hub
    ctx.use_endpoint(hub.url, demo=True, token=DEMO_WRITE_TOKEN)


def start_demo(ctx: Context) -> Any:
    """Start (or reuse) the demo Hub and point `ctx` at it with the demo's write token.

    Call on the main thread before any worker starts: it decides the process's Hub endpoint.
    """
    hub = launch_demo_hub()
    use_demo_hub(ctx, hub)
    return hub
