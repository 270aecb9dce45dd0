"""The chat pane's saved conversations: reopen one (ctrl+o) and export the current one (ctrl+s).

A mixin of `ChatPane` (panes/chat.py), kept apart to keep that module short; it uses the pane's store,
log, readout and loaded model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Input

from mlxtui.format import printable
from mlxtui.services.chat_sampling import SamplingSettings
from mlxtui.services.errors import MlxtuiError
from mlxtui.ui.screens.chat_open import OpenConversationScreen
from mlxtui.ui.widgets.rate import RateReadout

if TYPE_CHECKING:
    from mlxtui.ui.panes.chat import ChatPane

__all__ = ["SavedConversations"]


class SavedConversations:
    """ctrl+o and ctrl+s of the chat pane."""

    def action_open_conversation(self: ChatPane) -> None:
        conversations = self.store.list()
        if not conversations:
            self.notify("No saved conversations yet.", severity="information")
            return

        def opened(conv_id: str | None) -> None:
            if conv_id:
                self.open_conversation(conv_id)

        self.app.push_screen(OpenConversationScreen(conversations), opened)

    def open_conversation(self: ChatPane, conv_id: str) -> None:
        """Show a saved conversation and continue it: with the loaded model (the log marks the switch), or
        with its own model when none is loaded."""
        try:
            conv = self.store.load(conv_id)
        except MlxtuiError as error:
            self.notify(str(error), severity="error")
            return
        self.action_new_conversation()
        self.conversation = conv
        self.system_area.text = conv.system
        if conv.sampling:
            try:
                self._show_sampling(SamplingSettings(**conv.sampling))
            except TypeError:
                pass
        log = self.log_view
        log.add_messages(conv.messages)
        rate = self.query_one(RateReadout)
        rate.set_history([m["stats"] for m in conv.messages if m.get("stats")])
        log.scroll_end(animate=False)
        loaded = self.local.info if (self.local is not None and self.service is self.local) else None
        if loaded is not None and conv.model and loaded.path != conv.model:
            self.log_view.add_notice(f"Continuing “{conv.display_title}” (held with {conv.display_model}) with {loaded.name}.")
            conv.model, conv.model_name = loaded.path, loaded.name
        elif conv.model and self.service is None:
            self.query_one("#chat-model", Input).value = conv.model
            self.notify(f"Reopened “{printable(conv.display_title)}”; Enter in the model field loads {conv.display_model}.")

    def action_export(self: ChatPane) -> None:
        if not self.conversation.messages:
            self.notify("Nothing to export yet.", severity="information")
            return
        try:
            self.store.save(self.conversation)
            path = self.store.export_markdown(self.conversation)
        except OSError as error:
            self.notify(f"Export failed: {error}", severity="error")
            return
        self.notify(f"Exported to {path}", title="Markdown")
