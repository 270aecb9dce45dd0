"""ESC followed by a digit means Escape, then the digit (alt+digit, or Escape and a digit typed quickly in tmux).

Terminals send alt+2 as the bytes ESC 2, and tmux sends Escape-then-2 the same way when the two keys come
within its escape-time (500 ms by default). Textual reads ESC+digit as the macOS Option symbols (¡ ™ £ ¢ ∞ § ¶ • ª),
which then land in the focused text field. Read as Escape then the digit instead, the app's own policy applies:
Escape leaves the field, the digit switches pane. Keys typed as symbols directly (Option+2 → ™ on a Mac
keyboard) arrive without ESC and are not affected.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["read_esc_digit_as_escape_then_digit"]


@dataclass(frozen=True)
class _Key:
    """Stands in for a member of Textual's Keys enum: the parser reads only `.value`."""

    value: str


def read_esc_digit_as_escape_then_digit() -> bool:
    """Remap ESC+1..9 in Textual's sequence table; False (and nothing changed) if the table is not as expected.

    `textual._ansi_sequences` is private: each entry is checked before it is replaced, so a Textual release
    that changes the table leaves the old behaviour rather than breaking input.
    """
    try:
        from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
        from textual.keys import Keys
    except ImportError:
        return False
    sequences = {f"\x1b{n}": str(n) for n in range(1, 10)}
    if not all(isinstance(ANSI_SEQUENCES_KEYS.get(seq), (str, tuple)) for seq in sequences):
        return False
    for seq, digit in sequences.items():
        ANSI_SEQUENCES_KEYS[seq] = (Keys.Escape, _Key(digit))  # type: ignore[index]
    return True
