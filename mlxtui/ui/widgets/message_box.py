"""The chat's message box: an Input that keeps a sent message until its turn is drawn, and whose cursor
rests while a reply streams.

Both spare the model's thread a screen update (2 to 4 ms of the event loop on a slow CPU, whatever it
shows): clearing the box at Enter competed with the model reading the prompt, and a blinking cursor is a
screen update twice a second.
"""

from __future__ import annotations

from textual.widgets import Input

__all__ = ["MessageBox", "PROMPT_PLACEHOLDER", "READING_PLACEHOLDER", "QUEUED_PLACEHOLDER"]

PROMPT_PLACEHOLDER = "Message — Enter sends, Esc stops"
READING_PLACEHOLDER = "Reading your message… (Esc stops)"
QUEUED_PLACEHOLDER = "Message — sent when the model is ready"


class MessageBox(Input):
    """Where the user types messages (Enter sends them)."""

    def take_sent(self, text: str) -> None:
        """The sent `text` leaves the box as its turn is drawn; whatever was typed after it stays."""
        if self.value.startswith(text):
            self.value = self.value[len(text) :]

    def hold_blink(self) -> None:
        """Stop the blink where it is, drawing nothing (at Enter, while the model reads the prompt)."""
        if self._blink_timer is not None:
            self._blink_timer.pause()

    def rest_cursor(self, rest: bool) -> None:
        """Show the cursor still (`rest`), or let it blink again as an Input does (after `hold_blink` too)."""
        self.cursor_blink = not rest  # Input's watcher pauses (cursor shown) or resumes the blink timer
        if not rest:
            # A paused blink timer that is simply resumed ticks at once, and the cursor vanished as the reply
            # ended: start its cycle over instead, and only where Input itself blinks (when focused).
            if self.has_focus:
                self._restart_blink()
            else:
                self._pause_blink()
