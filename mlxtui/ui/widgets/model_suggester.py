"""Completion as you type in model and repo fields (Textual's Suggester; → at the end of the text accepts it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.suggester import Suggester

from mlxtui.services import Context
from mlxtui.services.completion import ModelCompleter

__all__ = ["ModelSuggester"]


class ModelSuggester(Suggester):
    """Suggests local folders, the library's conversions and Hub repo ids, as the field takes them.

    `ctx` is a callable: a field is built before the app's context is reachable from it.
    """

    def __init__(self, ctx: Callable[[], Context], *, paths: bool = True, repos: bool = True) -> None:
        # no Textual cache: the library and the Hub change while the app runs; the completer keeps its own
        super().__init__(use_cache=False, case_sensitive=True)
        self._ctx = ctx
        self._paths = paths
        self._repos = repos
        self._completer: ModelCompleter | None = None

    async def get_suggestion(self, value: str) -> str | None:
        ctx = self._ctx()
        if self._completer is None or self._completer.ctx is not ctx or self._completer.ctx.endpoint != ctx.endpoint:
            self._completer = ModelCompleter(ctx, paths=self._paths, repos=self._repos)
        try:
            return await asyncio.to_thread(self._completer.complete, value)
        except Exception:  # noqa: BLE001 - a suggestion is a courtesy: never an error while typing
            return None
