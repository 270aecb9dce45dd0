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
    "EXIT_CODES",
]


class MlxtuiError(Exception):
    """Base class. `str(error)` is a complete sentence fit to show a user as it is."""

    #: a short label for the kind of failure, shown in front of the message in the CLI
    kind: str = "error"
    #: the CLI's exit status for this kind (docs/troubleshooting.md, "Exit codes")
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} {hint}")


class NotFoundError(MlxtuiError):
    exit_code = 3
    kind = "not found"


class AuthError(MlxtuiError):
    exit_code = 4
    kind = "auth"


class GatedError(MlxtuiError):
    exit_code = 4
    kind = "gated"


class RateLimitedError(MlxtuiError):
    exit_code = 5
    kind = "rate limited"


class OfflineError(MlxtuiError):
    exit_code = 5
    kind = "offline"


class InvalidInputError(MlxtuiError):
    exit_code = 2
    kind = "invalid input"


class UnsupportedModelError(MlxtuiError):
    exit_code = 7
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
    exit_code = 130
    kind = "cancelled"


#: every exit status the CLI uses, for docs and tests
EXIT_CODES = {
    0: "success",
    1: "the operation failed (the message says why)",
    2: "bad input: an argument, a setting or a value given to a command",
    3: "not found: a repo, revision, file or folder that does not exist",
    4: "not allowed: no token, a refused token, or a gated repo without access",
    5: "offline or rate limited: the Hub could not be reached or kept refusing",
    6: "a file from the Hub or disk is malformed, too large or hostile",
    7: "the model was read, and the installed mlx-lm cannot convert or load it",
    70: "an unexpected internal error (the log file has the details)",
    129: "stopped by SIGHUP (the terminal or SSH session went away), after cleaning up",
    130: "interrupted or cancelled by the user",
    143: "stopped by SIGTERM (a service manager, `kill`), after cleaning up",
}
