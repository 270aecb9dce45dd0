"""Upload an MLX folder to the Hub: who am I, preflight, a resumable upload with progress, verification.

Everything goes through huggingface_hub (never mlx-lm's upload helper, which rewrites README.md and fails with
huggingface_hub 2.x), through `mlxtui.services.hubclient` (the client, the token, the error map, the thread
bridge). The parts live beside this module:

- `upload_identity`: whoami and the namespaces a token may write to;
- `upload_scan`: the folder walk (links, names) and the secret scan (content);
- `upload_preflight`: the checklist, the plan, and what the verdict is bound to;
- `upload_progress`: byte progress from huggingface_hub's hooks (only on the major version it knows);
- `upload_send`: repo, visibility, hashing, one commit with adds and deletes, verification (blocking).

The token comes from the Context, HF_TOKEN or the standard token file; it is passed to huggingface_hub and
never shown, logged or written anywhere by mlxtui, and no object here prints it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from mlxtui.format import human_bytes, printable
from mlxtui.services import Context, hubclient
from mlxtui.services.errors import (
    AuthError,
    CancelledByUser,
    InvalidInputError,
    MlxtuiError,
    OfflineError,
    UploadError,
)
from mlxtui.services.events import UploadFinished, UploadStage
from mlxtui.services.modelfolder import quant_label, is_repo_id, read_config, read_provenance
from mlxtui.services.upload_identity import Identity, identity_from_whoami, whoami
from mlxtui.services.upload_preflight import (
    CheckItem,
    RemoteState,
    UploadPlan,
    binding_changes,
    check_folder,
    remote_checks,
    remote_state,
)
from mlxtui.services.upload_progress import NOTHING_PUBLISHED, UPLOAD_LOCK
from mlxtui.services.upload_scan import Hidden, LocalFile, looks_like_token
from mlxtui.services.upload_send import SendState, compare, send

__all__ = [
    "Identity",
    "CheckItem",
    "LocalFile",
    "UploadPlan",
    "UploadService",
    "suggest_repo_name",
    "looks_like_token",
    "identity_from_whoami",
    "finished_summary",
]


def suggest_repo_name(folder: Path | str) -> str:
    """"<model>-<quantization>", e.g. h2o-danube2-tiny-chat-4bit, from the provenance (else the folder name)."""
    folder = Path(folder)
    provenance = read_provenance(folder)
    try:
        config = read_config(folder)
    except (OSError, MlxtuiError):
        config = {}
    if not provenance and not config.get("quantization"):
        return folder.name
    source = (provenance or {}).get("source")
    base = Path(str(source)).name if source else folder.name
    label = quant_label(config, (provenance or {}).get("options"))
    return base if label == "?" or base.endswith(label) else f"{base}-{label}"


def finished_summary(done: UploadFinished) -> str:
    """What a finished upload verified, saying how much the Hub already had with the same content:
    "9 files on the Hub: 2 sent (62.2 kB), 7 already there with the same content (320 kB); public.", and, when
    some of those were new to the repo but the Hub already stored their bytes (another repo, an earlier upload):
    "(320 kB, 2 from elsewhere on the Hub)". Short: the pane shows it in three lines at 80 columns, with the URL."""
    stored = f", {done.stored_files} from elsewhere on the Hub" if done.stored_files else ""
    line = (f"{done.verified_files} files on the Hub: {done.sent_files} sent ({human_bytes(done.sent_bytes)}), "
            f"{done.skipped_files} already there with the same content ({human_bytes(done.skipped_bytes)}{stored})")
    if done.deleted_files:
        n = len(done.deleted_files)
        line += f"; {n} stale file{'s' if n != 1 else ''} deleted"
    if done.private is not None:
        line += f"; {'private' if done.private else 'public'}" + (" (changed by this upload)" if done.visibility_changed else "")
    return line + "."


def _relative(folder: Path, path: str) -> str:
    """An --exclude path as the folder-relative path it names (an absolute path inside the folder works too)."""
    given = Path(path).expanduser()
    if given.is_absolute():
        for base in (folder, folder.resolve()):
            try:
                return given.relative_to(base).as_posix()
            except ValueError:
                continue
    return path


class UploadService:
    """whoami, preflight, upload and verify, against ctx.endpoint. Holds the Context, never a token of its own."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def __repr__(self) -> str:
        return f"UploadService(endpoint={self.ctx.endpoint!r})"

    async def whoami(self) -> Identity:
        """The token's user, its orgs, and the namespaces it may write to."""
        return await whoami(self.ctx)

    @staticmethod
    def normalise_repo_id(repo_id: str, identity: Identity | None = None) -> str:
        """"name" -> "<user>/name"; raises InvalidInputError for anything the Hub would refuse."""
        repo_id = repo_id.strip()
        if "/" not in repo_id and identity is not None:
            repo_id = f"{identity.user}/{repo_id}"
        if not is_repo_id(repo_id):
            raise InvalidInputError(
                f"{printable(repo_id, newlines=False)!r} is not a valid repo id.",
                hint="Use owner/name with letters, digits, '-', '_' and '.' (at most 96 each), "
                "e.g. mlx-community/model-4bit.",
            )
        return repo_id

    # -- preflight ------------------------------------------------------------------------------------

    async def preflight(self, folder: Path | str, repo_id: str, *, private: bool | None = None,
                        exclude: Iterable[str] = (), delete_others: bool = False) -> UploadPlan:
        """Everything checked before a byte is sent: the token, the target, the folder, secrets, the card, the repo.

        `private=None` keeps an existing repo's visibility (a new repo is public). `exclude` names files or
        folders (relative paths) that are not sent and not read. `delete_others` also deletes remote files the
        folder lacks that mlx-lm would not load (they are kept otherwise).
        """
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise InvalidInputError(f"{printable(folder, newlines=False)} is not a folder.",
                                    hint="Give the path of a converted MLX model.")
        exclude = tuple(_relative(folder, e) for e in exclude)
        checks, identity = await self._token_checks()
        if "/" not in repo_id.strip() and identity is None:
            # no account to default the namespace to: still check the folder, and say what is missing
            repo_id = repo_id.strip()
            checks.append(CheckItem("Target", "error", f"Give the repo as owner/{printable(repo_id, newlines=False)}: "
                                    "without a working token there is no namespace to default to."))
        else:
            repo_id = self.normalise_repo_id(repo_id, identity)
            checks += self._target_checks(identity, repo_id)
        found = await asyncio.to_thread(check_folder, folder, Hidden(hubclient.resolve_token(self.ctx)), exclude)
        checks += found.checks
        checks += await self._card_checks(folder, found.walk.files, repo_id)
        state = await self._remote(repo_id) if identity is not None else RemoteState()
        wanted = private if private is not None else bool(state.exists and state.private)
        plan = UploadPlan(folder, repo_id, wanted, self.ctx.endpoint, found.walk.files, checks, identity,
                          delete_others=delete_others, visibility_asked=private is not None, exclude=exclude,
                          findings=found.findings,
                          refused=list(found.binding.refused), binding=found.binding)
        checks += remote_checks(plan, state)
        return plan

    async def _token_checks(self) -> tuple[list[CheckItem], Identity | None]:
        try:
            identity = await self.whoami()
        except AuthError as error:
            return [CheckItem("Token", "error", str(error))], None
        except MlxtuiError as error:
            return [CheckItem("Token", "error", f"Could not check the token: {error}")], None
        orgs = ", ".join(identity.orgs) or "no orgs"
        read_only = identity.role == "read"
        return [CheckItem("Token", "error" if read_only else "ok",
                          printable(f"{identity.user} ({orgs}); {identity.role} token", newlines=False)
                          + (": it can't upload" if read_only else ""))], identity

    @staticmethod
    def _target_checks(identity: Identity | None, repo_id: str) -> list[CheckItem]:
        namespace = repo_id.split("/")[0]
        if identity is None or identity.role == "read":
            return []
        if identity.can_write(namespace):
            return [CheckItem("Target", "ok", f"{identity.user} may write to {namespace}")]
        if namespace in identity.orgs:
            return [CheckItem("Target", "error", f"{identity.user} has no write access to the org {namespace!r}.")]
        return [CheckItem("Target", "error", f"{namespace!r} belongs to someone else: {identity.user} may write to "
                          f"{', '.join(identity.writable)}.")]

    async def _remote(self, repo_id: str) -> RemoteState:
        try:
            return await hubclient.run(remote_state, hubclient.make_api(self.ctx), repo_id)
        except Exception:  # noqa: BLE001 - the upload itself reports a Hub that does not answer
            return RemoteState()

    async def _card_checks(self, folder: Path, files: list[LocalFile], repo_id: str = "") -> list[CheckItem]:
        from mlxtui.services.card import CARD_FILE, CardService
        from mlxtui.services.modelfolder import read_text

        card = next((f for f in files if f.path == CARD_FILE), None)
        if card is None:
            return [CheckItem("README.md", "error", "No README.md: write one in the Card pane or with `mlxtui card PATH`.")]
        try:
            text = await asyncio.to_thread(read_text, Path(card.real))
        except (OSError, MlxtuiError) as error:
            return [CheckItem("README.md", "error", f"README.md can't be read: {error}")]
        source = (read_provenance(folder) or {}).get("source")
        problems, notes = await CardService(self.ctx).lint(text, source)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            return [CheckItem("README.md", "error", printable(" ".join(p.message for p in errors), newlines=False))]
        warnings = [p.message for p in problems if p.severity == "warning"] + notes
        _, moved = CardService(self.ctx).retarget(text, repo_id) if "/" in repo_id else (text, [])
        if moved:  # the card names another repo (the folder name): users would copy a load() that fails
            from mlxtui.services.workflow import short_path

            what = "links" if all(c.startswith(("1 link", "2 links", "3 links")) or " links " in c for c in moved) \
                else "usage snippet"
            warnings.append(f"Its {what} {'name' if what == 'links' else 'names'} another repo than {repo_id}: `mlxtui card {short_path(folder)} --repo "
                            f"{repo_id}` (or the Card pane) fixes it.")
        if warnings:
            return [CheckItem("README.md", "warning", printable(" ".join(warnings), newlines=False))]
        return [CheckItem("README.md", "ok", "lint-clean")]

    # -- upload ---------------------------------------------------------------------------------------

    async def upload(self, plan: UploadPlan, *, cancel: threading.Event | None = None) -> AsyncIterator[Any]:
        """Check the folder is as checked, create the repo, set its visibility, send what the server lacks,
        commit once (deleting stale loadable files), verify. Yields upload events.

        Refuses a plan whose preflight has errors or found secrets. If the folder changed since the check, the
        check runs again first and the upload stops if it now fails. Setting `cancel` stops at the next read
        before the commit (nothing is published); after the commit request, the remote is checked and the
        CancelledByUser message says what it holds.
        """
        if not plan.ok or plan.findings or plan.refused:
            problems = [f"{c.name}: {c.detail}" for c in plan.errors] or ["secrets or refused files in the folder"]
            raise UploadError("The preflight found problems: " + "; ".join(problems))
        cancel = cancel or threading.Event()
        plan, note = await self._recheck(plan)
        if note:
            yield UploadStage("checking", note)
        if cancel.is_set():
            raise CancelledByUser(NOTHING_PUBLISHED, hint="Run it again to resume.")
        async for event in self._drive(plan, cancel):
            yield event

    async def _recheck(self, plan: UploadPlan) -> tuple[UploadPlan, str | None]:
        """The plan checked again if anything changed since (refused if it now fails), with a note saying so;
        else the plan as it is."""
        if plan.binding is None:
            return plan, None
        changes = await asyncio.to_thread(binding_changes, plan.folder, plan.binding, plan.exclude)
        if not changes:
            return plan, None
        what = ", ".join(changes[:4]) + (" …" if len(changes) > 4 else "")
        fresh = await self.preflight(plan.folder, plan.repo_id, private=plan.private if plan.visibility_asked else None,
                                     exclude=plan.exclude,
                                     delete_others=plan.delete_others)
        if not fresh.ok:
            raise UploadError(f"The folder changed since the check ({what}) and the check now fails: "
                              + "; ".join(f"{c.name}: {c.detail}" for c in fresh.errors) + ". Nothing was sent.")
        return fresh, f"The folder changed since the check ({what}); checked again: ok"

    async def _drive(self, plan: UploadPlan, cancel: threading.Event) -> AsyncIterator[Any]:
        """Run `send` on a worker thread through hubclient's bridge; its events (and rate-limit Notices) in order."""
        state = SendState()

        def run(emit: Any) -> None:
            with UPLOAD_LOCK:
                send(hubclient.make_api(self.ctx), plan, emit, cancel, state)

        try:
            async for event in hubclient.reporting(run):
                if not isinstance(event, hubclient.Result):
                    yield event
        except Exception as error:  # noqa: BLE001 - every failure is said truthfully, then raised as MlxtuiError
            async for outcome in self._failed(plan, error, cancel, state):
                yield outcome
        finally:
            cancel.set()  # a consumer that stopped early stops the sender too (at its next read)

    async def _failed(self, plan: UploadPlan, error: BaseException, cancel: threading.Event,
                      state: SendState) -> AsyncIterator[Any]:
        """Say truthfully what a cancel or a failure left on the Hub; always raises."""
        cancelled = cancel.is_set() or isinstance(error, CancelledByUser)
        mapped = hubclient.map_error(error, plan.repo_id, plan.endpoint, writing=True)
        dropped = isinstance(mapped, OfflineError)
        note = (f" ({plan.repo_id} was made {'private' if plan.private else 'public'} before sending)"
                if state.visibility_changed else "")
        if not (cancelled or dropped):
            if note and not state.commit_sent:
                raise type(mapped)(mapped.message.rstrip(".") + note + ".", hint=mapped.hint) from error
            raise mapped from error
        if not state.commit_sent:
            if cancelled:
                raise CancelledByUser(NOTHING_PUBLISHED[:-1] + note + ".", hint="Run it again to resume.") from error
            raise UploadError(f"The connection to {plan.endpoint} dropped during the upload; nothing was published{note}.",
                              hint=mapped.hint) from error
        yield UploadStage("checking", "The commit may already be on the Hub: checking…")
        held = await self._what_landed(plan, state)
        if cancelled:
            raise CancelledByUser(f"Cancelled after the commit was sent: {held}", hint="Check the repo on the Hub.") from error
        raise UploadError(f"The connection to {plan.endpoint} dropped after the commit was sent: {held}",
                          hint=mapped.hint) from error

    async def _what_landed(self, plan: UploadPlan, state: SendState) -> str:
        """One sentence on what the repo holds now compared with the folder."""
        from huggingface_hub import CommitOperationAdd

        def check() -> list[str]:
            ops = [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.real) for f in plan.files]
            return compare(hubclient.make_api(self.ctx), plan, ops, plan.deletions, state.private)

        try:
            problems = await hubclient.run(check)
        except Exception as error:  # noqa: BLE001 - the answer is then "unknown", said as such
            return f"the Hub could not be asked ({hubclient.map_error(error, plan.repo_id, plan.endpoint)}); check {plan.url}."
        if not problems:
            return f"the commit landed: {plan.repo_id} holds the folder ({len(plan.files)} files)."
        return (f"the commit did not land (or only in part): {'; '.join(problems[:3])}"
                f"{'…' if len(problems) > 3 else ''}. Upload again to finish.")

    async def verify(self, plan: UploadPlan) -> int:
        """Compare the remote repo with the local folder now (without uploading); returns the files checked."""
        from huggingface_hub import CommitOperationAdd

        def check() -> list[str]:
            ops = [CommitOperationAdd(path_in_repo=f.path, path_or_fileobj=f.real) for f in plan.files]
            return compare(hubclient.make_api(self.ctx), plan, ops, [])

        try:
            problems = await hubclient.run(check)
        except Exception as error:
            raise hubclient.map_error(error, plan.repo_id, plan.endpoint) from error
        if problems:
            raise UploadError(f"Verification of {plan.repo_id} failed: " + "; ".join(problems[:5]),
                              hint="Run the upload again to send the files that differ.")
        return len(plan.files)

