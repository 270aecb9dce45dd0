"""Is the Hub endpoint reachable? A quick liveness probe so start-up is never held up by a dead network."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

__all__ = ["probe_endpoint"]


async def probe_endpoint(endpoint: str, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the endpoint's host and port opens within `timeout`.

    A plain connect, no TLS and no HTTP client: it costs a few milliseconds of the event loop at start-up,
    where building an HTTPS client costs a tenth of a second. Real requests go through huggingface_hub.
    """
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True
