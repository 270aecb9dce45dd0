"""Is the Hub endpoint reachable? A quick liveness probe so start-up is never held up by a dead network."""

from __future__ import annotations

import httpx

__all__ = ["probe_endpoint"]


async def probe_endpoint(endpoint: str, timeout: float = 3.0) -> bool:
    """True when anything answers HTTP at `endpoint`; a liveness check, not a Hub API call."""
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            await client.head(endpoint.rstrip("/") + "/api/models", params={"limit": 1})
    except httpx.HTTPError:
        return False
    return True
