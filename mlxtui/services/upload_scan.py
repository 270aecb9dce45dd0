"""What an upload would send, read safely: the folder walk (links, names) and the secret scan (content).

- `walk_folder`: every regular file under the folder, without ever following a link that leaves it (a Hugging
  Face cache snapshot may link into its own repo's `blobs/`); links that leave, broken links, links to folders
  and special files are named and refused. Files whose names say "secret" or "junk" are named and refused.
- `scan_file`: one file streamed whole, whatever its size, for private-key blocks and token shapes (Hugging
  Face, GitHub, AWS, OpenAI-style, Slack, Google, the user's own token); each finding names the line and
  shows the secret masked. Safetensors files: only their `__metadata__` (never the tensors).
- `fingerprint`: what the verdict was given for (real path, size, mtime, inode, content digest), so the upload
  can tell when the folder changed since the check.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable

from mlxtui.format import printable
from mlxtui.services.bounded import BadFileError, read_safetensors_header

__all__ = [
    "Hidden",
    "LocalFile",
    "Finding",
    "FolderWalk",
    "Refusal",
    "walk_folder",
    "secret_name",
    "scan_bytes",
    "scan_file",
    "scan_name",
    "file_digest",
    "looks_like_token",
    "open_checked",
    "is_weights",
    "FOREIGN_WEIGHTS",
]

#: file names that hold credentials (compared lower-cased): refused, never uploaded
_SECRET_NAMES = (
    ".env", ".env*", "*.env", ".envrc", "*.envrc", ".netrc", "_netrc", ".git-credentials", ".npmrc", ".pypirc",
    ".pgpass", ".htpasswd", ".dockercfg", ".boto", ".s3cfg", ".my.cnf",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "id_xmss*",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk", "*.kdbx", "*.ovpn", "*.asc", "*.gpg",
    "credentials", "credentials.*", "credentials_*", "*_credentials", "*_credentials.json",
    "application_default_credentials.json", "*service_account*.json", "*service-account*.json",
    "client_secret*.json", "secring.*", "access_tokens.db", "token", "stored_tokens",
)
#: folders whose whole content is credentials (cloud CLIs, SSH, GnuPG)
_SECRET_DIRS = (".ssh", ".aws", ".gnupg", ".azure", ".kube", ".docker", "gcloud", ".gcloud", ".config")
#: junk: refused so the user looks at what else leaked into the folder
_JUNK_NAMES = (".ds_store", "thumbs.db", "desktop.ini", "*.pyc", "*.pyo", "*.swp", "*.swo", "*~", "*.tmp", ".*.tmp",
               "*.orig", "*.rej", "*.bak")
_JUNK_DIRS = ("__pycache__", ".git", ".ipynb_checkpoints", ".cache", ".huggingface", ".venv", ".idea", ".vscode",
              ".mypy_cache", ".pytest_cache")
#: weights of other frameworks: refused by the preflight, so not worth reading for secrets
FOREIGN_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.gguf", "*.ckpt", "*.h5", "*.msgpack", "*.onnx")

# Token shapes. A token is found whatever follows it (letters, "_", punctuation). Prefixes that cannot occur in
# ordinary text (hf_, ghp_, github_pat_ …) are found whatever precedes them too; short ones that can (sk-,
# AKIA) need something other than a letter or digit before them, so "task-…" is not a key but "=sk-…" is.
# Each shape: (kind, pattern, on the lower-cased text?, needs a non-alphanumeric byte before it?). Case-blind
# shapes run on a lower-cased copy of the window, and the "before" rule is checked in Python: a look-behind or
# IGNORECASE in the pattern costs re its literal-prefix search (15-40 MB/s instead of hundreds).
_SHAPES: tuple[tuple[str, re.Pattern[bytes], bool, bool], ...] = tuple(
    (kind, re.compile(pattern), lower, boundary)
    for kind, pattern, lower, boundary in (
        ("private key", rb"-----begin[a-z0-9 ]{0,40} private key(?: block)?-----", True, False),
        ("private key", rb"PuTTY-User-Key-File-\d", False, False),
        ("Hugging Face token", rb"(?P<s>hf_[A-Za-z0-9]{30,})", False, False),
        ("Hugging Face org token", rb"(?P<s>api_org_[A-Za-z0-9]{30,})", False, False),
        ("GitHub token", rb"(?P<s>gh[pousr]_[A-Za-z0-9]{30,})", False, False),
        ("GitHub token", rb"(?P<s>github_pat_[A-Za-z0-9_]{22,})", False, False),
        ("AWS access key id", rb"(?P<s>A(?:KIA|SIA|BIA|CCA|ROA|IDA)[A-Z0-9]{16})", False, True),
        ("AWS secret key", rb"secret_?access_?key[\"']?\s*(?:=|:|=>)\s*[\"']?(?P<s>[a-z0-9/+]{40})", True, False),
        ("AWS secret key", rb"aws_?secret(?:_?key)?[\"']?\s*(?:=|:|=>)\s*[\"']?(?P<s>[a-z0-9/+]{40})", True, False),
        ("OpenAI-style key", rb"(?P<s>sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})", False, True),
        ("Slack token", rb"(?P<s>xox[abposr]-[0-9]{8,}-[A-Za-z0-9-]{10,})", False, True),
        ("Google API key", rb"(?P<s>AIza[0-9A-Za-z_-]{35})", False, True),
    )
)
_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_CHUNK = 1 << 20
#: bytes carried from one chunk to the next, so a secret across a chunk border is still found whole
_OVERLAP = 4096
#: findings kept per file (a file full of tokens needs no thousand lines to say so)
_MAX_FINDINGS = 20


class Hidden:
    """A secret held without ever being printed: repr and str say only that it is hidden."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or ""

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def reveal(self) -> str:
        return self._value

    def positions(self, data: bytes) -> list[int]:
        """Where the secret occurs in `data` (never bound to a local name a crash report could print)."""
        if len(self._value) < 8:  # too short to be a token; would match everywhere
            return []
        return [m.start() for m in re.finditer(re.escape(self._value.encode()), data)]

    def __len__(self) -> int:
        return len(self._value)


@dataclass(frozen=True)
class LocalFile:
    """One file to upload: its path in the repo ("/" separators) and size; `real` is where it is read from."""

    path: str
    size: int
    mtime_ns: int = field(default=0, compare=False)
    real: str = field(default="", compare=False, repr=False)
    inode: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class Finding:
    """A secret found in a file: where (line, or the safetensors metadata key) and what, masked."""

    path: str
    where: str
    kind: str
    masked: str
    #: the path as shown, when the path itself holds the secret
    shown: str = ""

    def __str__(self) -> str:
        name = self.shown or printable(self.path, newlines=False)
        return f"{name} {self.where}: {self.kind}{' ' + self.masked if self.masked else ''}"


@dataclass(frozen=True)
class Refusal:
    """A path the walk will not send: `why` is "link", "secret", "junk" or "special"; `label` says it for people."""

    path: str
    why: str
    label: str


@dataclass
class FolderWalk:
    """The files that would be sent, and everything refused on the way."""

    files: list[LocalFile] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def labels(self, *why: str) -> list[str]:
        return [r.label for r in self.refused if r.why in why]

    def paths(self, *why: str) -> list[str]:
        return [r.path for r in self.refused if r.why in why]


def _lower_match(name: str, patterns: Iterable[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p) for p in patterns)


def secret_name(name: str) -> bool:
    """Whether a file name says it holds credentials (case-insensitive): .env*, keys, netrc, cloud files."""
    lowered = name.lower()
    if lowered.startswith("id_") and ("." not in lowered or lowered.endswith(".pub")):
        return True  # SSH keys of any algorithm: id_rsa, id_ed25519_sk, id_foo.pub
    return _lower_match(name, _SECRET_NAMES)


def is_weights(path: str) -> bool:
    return path.lower().endswith(".safetensors")


def _inside(real: str, roots: tuple[str, ...]) -> bool:
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _allowed_roots(folder: Path) -> tuple[str, ...]:
    """The folder itself, and for a Hugging Face cache snapshot (…/models--x--y/snapshots/<rev>) its repo's blobs."""
    roots = [os.path.realpath(folder)]
    parent = Path(roots[0]).parent
    if parent.name == "snapshots" and parent.parent.name.startswith(("models--", "datasets--", "spaces--")):
        blobs = parent.parent / "blobs"
        if blobs.is_dir():
            roots.append(os.path.realpath(blobs))
    return tuple(roots)


def _excluded(rel: str, exclude: frozenset[str]) -> bool:
    return rel in exclude or any(rel.startswith(e.rstrip("/") + "/") for e in exclude)


def walk_folder(folder: Path, exclude: Iterable[str] = ()) -> FolderWalk:
    """Walk `folder` without following links out of it; sorted files plus everything refused, by label."""
    exclude = frozenset(e.strip().strip("/") for e in exclude if e.strip().strip("/"))
    roots = _allowed_roots(folder)
    walk = FolderWalk()
    for top, dirs, names in os.walk(folder, followlinks=False):
        base = Path(top)
        rel_top = base.relative_to(folder).as_posix()
        prefix = "" if rel_top == "." else rel_top + "/"
        kept = []
        for d in sorted(dirs):
            rel = prefix + d
            if _excluded(rel, exclude):
                walk.excluded.append(rel + "/")
            elif (base / d).is_symlink():
                walk.refused.append(Refusal(rel, "link", f"{printable(rel, newlines=False)}/ (a link to a folder; not followed)"))
            elif d.lower() in _SECRET_DIRS:
                walk.refused.append(Refusal(rel, "secret", printable(rel, newlines=False) + "/"))
            elif d.lower() in _JUNK_DIRS:
                walk.refused.append(Refusal(rel, "junk", printable(rel, newlines=False) + "/"))
            else:
                kept.append(d)
        dirs[:] = kept  # never descend into refused folders
        for name in sorted(names):
            rel = prefix + name
            label = printable(rel, newlines=False)
            path = base / name
            if _excluded(rel, exclude):
                walk.excluded.append(rel)
                continue
            real = os.path.realpath(path)
            if path.is_symlink():
                target = os.readlink(path)
                if not _inside(real, roots):
                    walk.refused.append(Refusal(rel, "link", f"{label} → {printable(target, newlines=False)} (leaves the folder)"))
                    continue
                if not os.path.lexists(real) or not os.path.exists(real):
                    walk.refused.append(Refusal(rel, "link", f"{label} → {printable(target, newlines=False)} (a broken link)"))
                    continue
            if secret_name(name) or secret_name(Path(real).name):
                walk.refused.append(Refusal(rel, "secret", label))
                continue
            if _lower_match(name, _JUNK_NAMES):
                walk.refused.append(Refusal(rel, "junk", label))
                continue
            try:
                info = os.stat(real)
            except OSError as error:
                walk.refused.append(Refusal(rel, "special", f"{label} ({error.strerror or 'unreadable'})"))
                continue
            if not stat.S_ISREG(info.st_mode):
                walk.refused.append(Refusal(rel, "special", f"{label} (not a regular file)"))
                continue
            walk.files.append(LocalFile(rel, info.st_size, info.st_mtime_ns, real, info.st_ino))
    walk.files.sort(key=lambda f: f.path)
    return walk


# --- the content scan -----------------------------------------------------------------------------------


def _mask(secret: bytes) -> str:
    text = secret.decode("ascii", errors="replace")
    return f"{printable(text[:4], newlines=False)}… ({len(text)} characters)"


class _Scanner:
    """Feeds a stream chunk by chunk through every pattern, keeping line numbers and a digest."""

    def __init__(self, path: str, extra: tuple[Hidden, ...]) -> None:
        self.path = path
        self.extra = extra
        self.findings: list[Finding] = []
        self.digest = hashlib.sha256()
        self._tail = b""
        self._tail_start = 0  # absolute offset of the tail
        self._lines_before_tail = 0
        self._seen: set[tuple[int, str]] = set()

    def feed(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        window = self._tail + chunk
        start = self._tail_start
        self._search(window, start, final=False)
        keep = min(len(window), _OVERLAP)
        cut = len(window) - keep
        self._lines_before_tail += window.count(b"\n", 0, cut)
        self._tail, self._tail_start = window[cut:], start + cut

    def finish(self) -> None:
        """Search the last bytes once more, now that nothing follows: a match held back at the end is whole."""
        self._search(self._tail, self._tail_start, final=True)

    def _add(self, window: bytes, start: int, pos: int, kind: str, secret: bytes | None, hint: str = "") -> None:
        key = (start + pos, kind)
        if key in self._seen or len(self.findings) >= _MAX_FINDINGS:
            return
        self._seen.add(key)
        line = self._lines_before_tail + window.count(b"\n", 0, pos) + 1
        self.findings.append(Finding(self.path, f"line {line}", kind, _mask(secret) if secret else hint))

    def _search(self, window: bytes, start: int, *, final: bool) -> None:
        lowered = window.lower()
        held = len(window) - _OVERLAP  # matches starting after this are searched again with what follows
        for kind, pattern, lower, boundary in _SHAPES:
            for match in pattern.finditer(lowered if lower else window):
                at = match.start()
                if not final and match.end() == len(window) and at >= held:
                    continue  # may go on in the next chunk: found there, whole
                if boundary and at > 0 and window[at - 1] in _ALNUM:
                    continue  # part of a longer word ("task-…"), not a key
                span = match.span("s") if "s" in pattern.groupindex else None
                self._add(window, start, at, kind, window[span[0]:span[1]] if span else None)
        for hidden in self.extra:
            for pos in hidden.positions(window):
                self._add(window, start, pos, "your Hugging Face token", None, hint=f"… ({len(hidden)} characters)")


def scan_bytes(data: bytes, path: str = "", extra: tuple[Hidden, ...] = ()) -> list[Finding]:
    """The secrets in `data` (see scan_file)."""
    scanner = _Scanner(path, extra)
    for i in range(0, max(len(data), 1), _CHUNK):
        scanner.feed(data[i:i + _CHUNK])
    scanner.finish()
    return scanner.findings


def _scan_stream(handle: BinaryIO, path: str, extra: tuple[Hidden, ...]) -> tuple[list[Finding], str]:
    scanner = _Scanner(path, extra)
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        scanner.feed(chunk)
    scanner.finish()
    return scanner.findings, scanner.digest.hexdigest()


def open_checked(real: str) -> BinaryIO:
    """Open a file at its checked real path, refusing it if it has since become a link (O_NOFOLLOW)."""
    return os.fdopen(os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def _masked(data: bytes, extra: tuple[Hidden, ...]) -> bytes:
    """`data` with every secret in it cut to its first four bytes and "…"."""
    lowered = data.lower()
    spans = [m.span() for _, pattern, lower, _ in _SHAPES for m in pattern.finditer(lowered if lower else data)]
    spans += [(at, at + len(hidden)) for hidden in extra for at in hidden.positions(data)]
    for start, end in sorted(spans, reverse=True):
        data = data[:start] + data[start:min(end, start + 4)] + "…".encode() + data[end:]
    return data


def scan_name(path: str, extra: tuple[Hidden, ...] = ()) -> list[Finding]:
    """Secrets in a file's path (the path is published too); the finding shows the path with them masked."""
    data = path.encode("utf-8", "replace")
    found = scan_bytes(data, path, extra)
    if not found:
        return []
    shown = printable(_masked(data, extra).decode("utf-8", "replace"), newlines=False)
    return [Finding(path, "its name", f.kind, f.masked, shown) for f in found]


def looks_like_token(data: bytes) -> bool:
    """True when bytes hold something shaped like a token or a private key."""
    return bool(scan_bytes(data))


def scan_file(file: LocalFile, extra: tuple[Hidden, ...] = ()) -> tuple[list[Finding], str]:
    """The secrets in one file and the digest its verdict holds for.

    Any file but weights: every byte, streamed. Safetensors: the header's `__metadata__` strings (the digest is
    of the header, which is all that was checked). Raises BadFileError for a safetensors header that can't be
    read, OSError when the file can't be opened.
    """
    if not is_weights(file.path):
        with open_checked(file.real) as handle:
            return _scan_stream(handle, file.path, extra)
    tensors, metadata = read_safetensors_header(Path(file.real))
    findings: list[Finding] = []
    for key, value in metadata.items():
        for found in scan_bytes(f"{key}: {value}".encode("utf-8", "replace"), file.path, extra):
            findings.append(Finding(file.path, f"__metadata__ {printable(key, newlines=False)!r}", found.kind, found.masked))
    for found in scan_bytes("\n".join(tensors).encode("utf-8", "replace"), file.path, extra):
        findings.append(Finding(file.path, "a tensor name", found.kind, found.masked))  # names are public text too
    header = hashlib.sha256(repr(sorted(metadata.items())).encode() + repr(sorted(tensors)).encode())
    return findings[:_MAX_FINDINGS], header.hexdigest()


def file_digest(file: LocalFile) -> str:
    """The digest `scan_file` would give, without scanning (to tell whether a file changed since the check)."""
    if is_weights(file.path):
        try:
            tensors, metadata = read_safetensors_header(Path(file.real))
        except (OSError, BadFileError):
            return "unreadable"
        header = hashlib.sha256(repr(sorted(metadata.items())).encode() + repr(sorted(tensors)).encode())
        return header.hexdigest()
    digest = hashlib.sha256()
    with open_checked(file.real) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
