"""Chat with a running cluster through the usual OpenAI-compatible client.

`ClusterChatService` has the shape of `OpenAIChatService` (reply, stop, close) and adds what a cluster needs:
a rank that dies mid-reply ends the reply with that rank's story (the supervisor has already stopped the
others) instead of a bare dropped connection or a reply that hangs on a rank waiting for its peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mlxtui.services.cluster import Cluster, running_cluster
from mlxtui.services.cluster_hosts import ClusterError
from mlxtui.services.errors import MlxtuiError
from mlxtui.services.openai_chat import OpenAIChatService

__all__ = ["ClusterChatService", "endpoint_service"]

#: how long a failed connection waits for the supervisor's account of which rank died
_EXPLAIN_S = 15.0


class ClusterChatService:
    """OpenAIChatService against `cluster.base_url`, failing with the cluster's reason when a rank dies."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.client = OpenAIChatService(cluster.base_url)

    @property
    def ranks(self) -> int:
        return self.cluster.ranks

    @property
    def split(self) -> str:
        return self.cluster.split

    def stop(self) -> None:
        """Stop the running reply (the cluster keeps running)."""
        self.client.stop()

    def close(self) -> None:
        """Nothing to free here: the cluster is stopped by whoever launched it."""

    def _error(self) -> ClusterError:
        return ClusterError(self.cluster.failure or "The cluster stopped.", hint=f"Rank logs: {self.cluster.run_dir}.")

    async def reply(self, messages: Sequence[Any], system: str | None = None,
                    sampling: Any = None) -> AsyncIterator[Any]:
        """The client's events; ClusterError as soon as the cluster reports a failure."""
        if self.cluster.failed.is_set():
            raise self._error()
        inner = self.client.reply(messages, system, sampling)
        failed = asyncio.ensure_future(self.cluster.failed.wait())
        step: asyncio.Future[Any] | None = None
        try:
            while True:
                step = asyncio.ensure_future(inner.__anext__())
                await asyncio.wait([step, failed], return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    raise self._error()
                try:
                    event = step.result()
                except StopAsyncIteration:
                    return
                except MlxtuiError:
                    # A dropped connection is usually a rank dying: wait briefly for the supervisor's account.
                    await asyncio.wait([failed], timeout=_EXPLAIN_S)
                    if self.cluster.failed.is_set():
                        raise self._error() from None
                    raise
                yield event
        finally:
            failed.cancel()
            if step is not None and not step.done():
                step.cancel()
                try:
                    await step
                except (asyncio.CancelledError, StopAsyncIteration, Exception):
                    pass
            await inner.aclose()


def endpoint_service(url: str) -> tuple[Any, str]:
    """The service Chat uses for an endpoint URL, and what its readout adds: for a cluster this process runs,
    a ClusterChatService and " · distributed: pipeline over 2 ranks"; else the plain client and ""."""
    cluster = running_cluster(url)
    if cluster is None:
        return OpenAIChatService(url), ""
    return ClusterChatService(cluster), f" · distributed: {cluster.split} over {cluster.ranks} ranks"
