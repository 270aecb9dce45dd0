"""Errors the service layer raises: each message tells a person what happened and what to do."""

from __future__ import annotations

__all__ = [
    "MlxtuiError",
    "NotFoundError",
    "AuthError",
    "GatedError",
    "RateLimitedError",
    "OfflineError",
    "InvalidInputError",
    "UnsupportedModelError",
    "ConversionError",
    "ChatError",
    "CardError",
    "UploadError",
    "CancelledByUser",
]


class MlxtuiError(Exception):
    """Base class. `str(error)` is a complete sentence fit to show a user as it is."""

    #: a short label for the kind of failure, shown in front of the message in the CLI
    kind: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} {hint}")


class NotFoundError(MlxtuiError):
    kind = "not found"


class AuthError(MlxtuiError):
    kind = "auth"


class GatedError(MlxtuiError):
    kind = "gated"


class RateLimitedError(MlxtuiError):
    kind = "rate limited"


class OfflineError(MlxtuiError):
    kind = "offline"


class InvalidInputError(MlxtuiError):
    kind = "invalid input"


class UnsupportedModelError(MlxtuiError):
    kind = "unsupported"


class ConversionError(MlxtuiError):
    kind = "conversion"


class ChatError(MlxtuiError):
    kind = "chat"


class CardError(MlxtuiError):
    kind = "card"


class UploadError(MlxtuiError):
    kind = "upload"


class CancelledByUser(MlxtuiError):
    kind = "cancelled"
