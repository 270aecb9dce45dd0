"""The frozen dataclasses services yield: the contract between services and the UI.

Each service owns a section below. Events are nouns; they carry facts, never widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Notice", "LoadProgress", "ModelLoaded", "PromptRendered", "TokenDelta", "ChatStats",
    "ConvertProgress", "ConvertLog", "ConvertVariantDone", "ConvertFinished",
    "SearchHit", "SearchPage", "UploadStage", "UploadProgress", "UploadFinished"]


@dataclass(frozen=True)
class Notice:
    """Something a person should read, e.g. "rate limited, retrying in 3 s"."""

    text: str
    severity: str = "information"  # "information" | "warning" | "error"


# --- chat (services/chat.py, services/openai_chat.py) ---------------------------------------------


@dataclass(frozen=True)
class LoadProgress:
    """Loading a model: `stage` in words, `fraction` of the whole load (None when unknown)."""

    stage: str
    fraction: float | None = None


@dataclass(frozen=True)
class ModelLoaded:
    """A model is loaded and ready; `sampling` holds the defaults from its generation_config.json."""

    path: str
    name: str
    model_type: str
    context_length: int | None
    has_chat_template: bool
    weights_bytes: int
    load_s: float
    sampling: object  # mlxtui.services.chat.SamplingSettings (kept untyped here to stay import-light)


@dataclass(frozen=True)
class PromptRendered:
    """The exact prompt the template rendered for this turn, and how much of it the prompt cache already held."""

    text: str
    prompt_tokens: int
    cached_tokens: int
    system_folded: bool = False
    completion_mode: bool = False


@dataclass(frozen=True)
class TokenDelta:
    """New reply text (one or several tokens' worth) to append."""

    text: str


@dataclass(frozen=True)
class ChatStats:
    """Figures for the turn so far; the last one of a turn has `finish_reason` set."""

    prompt_tokens: int = 0  # processed this turn (not counting the cached prefix)
    cached_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tokens: int = 0
    generation_tps: float = 0.0
    ttft_s: float = 0.0
    peak_memory_gb: float = 0.0
    elapsed_s: float = 0.0
    finish_reason: str | None = None  # "stop" | "length" | "cancelled"


# --- convert (services/convert.py, services/jobs.py) ------------------------------------------------


@dataclass(frozen=True)
class ConvertProgress:
    """A conversion job moved on: `stage` is check | download | load | quantize | save | done.

    `variant` is the index of the output being made (-1 for the shared download); `done`/`total` count
    `unit`s (bytes, files, layers, shards); `rate` is units per second, `eta_s` seconds left, when known.
    """

    job_id: str
    stage: str
    variant: int = -1
    done: float = 0
    total: float | None = None
    unit: str = ""
    rate: float | None = None
    eta_s: float | None = None
    item: str = ""


@dataclass(frozen=True)
class ConvertLog:
    """One line the worker printed (its own messages, mlx-lm's and huggingface_hub's)."""

    job_id: str
    text: str


@dataclass(frozen=True)
class ConvertVariantDone:
    """One output folder is complete."""

    job_id: str
    variant: int
    output: str
    bits_per_weight: float | None
    size_bytes: int
    elapsed_s: float


@dataclass(frozen=True)
class ConvertFinished:
    """The job ended: `state` is done | failed | cancelled; `message` says why when it did not finish."""

    job_id: str
    state: str
    message: str = ""


# --- search (services/hub.py) -----------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """One search result row: what the results table shows."""

    repo_id: str
    downloads: int | None = None
    likes: int | None = None
    last_modified: str | None = None  # ISO-8601
    parameters: int | None = None  # from safetensors metadata, when the Hub knows it
    mlx: bool = False  # library mlx or tagged mlx
    gated: bool = False
    private: bool = False
    pipeline_tag: str | None = None
    library_name: str | None = None


@dataclass(frozen=True)
class SearchPage:
    """The next page of a search; `done` when the Hub has no more; `offset` is the index of its first hit."""

    hits: tuple[SearchHit, ...]
    done: bool
    offset: int = 0


# --- upload (services/upload.py) ----------------------------------------------------------------------


@dataclass(frozen=True)
class UploadStage:
    """The upload moved to a new step: "checking", "repo", "hashing", "comparing", "sending", "committing",
    "verifying"."""

    stage: str
    text: str


@dataclass(frozen=True)
class UploadProgress:
    """Bytes and files sent so far of what this run has to send (files already on the server excluded)."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    bytes_per_second: float


@dataclass(frozen=True)
class UploadFinished:
    """Committed (or nothing to commit) and verified: every local file is on the server with the same hash."""

    repo_id: str
    url: str
    commit: str | None
    sent_files: int
    skipped_files: int
    sent_bytes: int
    verified_files: int
    #: bytes of the files the Hub already had with the same content (not sent again)
    skipped_bytes: int = 0
    #: remote files this commit deleted (mlx-lm would have loaded them; the folder lacks them)
    deleted_files: tuple[str, ...] = ()
    #: the visibility read back from the Hub after the upload
    private: bool | None = None
    #: the upload changed the repo's visibility before sending (public -> private or back)
    visibility_changed: bool = False
    #: of skipped_files, those this repo did not hold but the Hub already stored (another repo's copy, an earlier
    #: interrupted upload): the commit adds them, their bytes were not sent
    stored_files: int = 0
    #: their bytes (included in skipped_bytes)
    stored_bytes: int = 0
