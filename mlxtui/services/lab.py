"""The quantization lab: build several variants from one download and measure each against the original.

``LabService.plan`` checks everything it can before any work (variant names, what the architecture can take,
an already-quantized source, an evaluation text too short for one sequence) and tokenizes the evaluation text;
``LabService.run`` then yields events while it

1. computes the reference's next-token distributions once (a fresh process, lab_measure.py), cached on disk
   under a key made of the model, the tokens and the sequence length: a second lab on the same text skips it
   (lab_cache.py keeps the most recently used references within a budget);
2. builds the plain variants (bits, group sizes, modes, recipes) as one conversion job of the convert service
   (its worker, progress, cancel and partial-folder rules), and the learned ones (GPTQ, AWQ, DWQ, dynamic
   quantization) one process each (lab_build.py), fed the lab's calibration text, never fetching anything;
3. measures each variant in a fresh process (lab_measure.py): size, bits per weight, peak memory, speed,
   perplexity, KL divergence and top-1 agreement.

Closing the iterator stops the running process and removes any half-built variant.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.atomic import write_text_atomic
from mlxtui.services import Context
from mlxtui.services import lab_cache, modelfolder
from mlxtui.services.errors import ConversionError, InvalidInputError, MlxtuiError, NotFoundError, UnsupportedModelError
from mlxtui.services.lab_data import is_hub_url, parse_hub_url, read_hub_text
from mlxtui.services.lab_report import RESULTS_FILE
from mlxtui.services.lab_text import BUILTIN_NAME, builtin_text, describe_builtin
from mlxtui.services.lab_variants import LabVariant, check_variant, parse_variants

__all__ = [
    "LabPlan", "LabService", "LabProgress", "LabReferenceReady", "LabVariantMeasured", "LabFinished",
    "DEFAULT_SEQ_LEN", "reference_cache_dir", "result_object",
]

DEFAULT_SEQ_LEN = 256
#: at most this many evaluation sequences by default (the built-in text gives about 70 of 256 tokens)
DEFAULT_MAX_SEQUENCES = 64
MAX_DATA_BYTES = 64 << 20


# -- events ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabProgress:
    """A step of the lab: stage is queued | download | reference | convert | build | measure; variant is a name or empty."""

    stage: str
    variant: str = ""
    done: float = 0
    total: float | None = None
    message: str = ""


@dataclass(frozen=True)
class LabReferenceReady:
    perplexity: float
    perplexity_se: float
    cached: bool


@dataclass(frozen=True)
class LabVariantMeasured:
    row: dict[str, Any]


@dataclass(frozen=True)
class LabFinished:
    result: dict[str, Any]


# -- plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabPlan:
    """Everything checked before work starts."""

    source: str  # as given
    folder: Path  # the unquantized model's folder
    config: dict[str, Any]
    variants: tuple[LabVariant, ...]
    outputs: tuple[Path, ...]
    out_dir: Path
    text_name: str
    text_description: str
    tokens: int  # tokens of the evaluation text
    seq_len: int
    sequences: int
    work: Path  # tokens.npy, calib.npy
    cache: Path  # the reference cache folder for this model, text and sequence length
    ref_bytes: int = 0
    ref_bits_per_weight: float | None = None
    repo: str | None = None  # a Hub source: weights downloaded once, at the start of the run
    model_id: str = ""  # changes with the source's weights: variants built from other weights are not reused
    notes: tuple[str, ...] = field(default_factory=tuple)


def reference_cache_dir() -> Path:
    return paths.data_dir() / "lab" / "reference"


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def _check_recipe_layers(name: str, config: dict[str, Any], parsed: list[LabVariant]) -> None:
    """The mixed recipes need down_proj layers (mlx_lm.convert.mixed_quant_predicate_builder): look at the
    model mlx-lm would build from this config (arrays stay lazy: nothing is allocated) and refuse without them."""
    from mlx_lm.utils import _get_classes

    model_class, args_class = _get_classes(config)
    model = model_class(args_class.from_dict(config))
    has_down = any("down_proj" in key for key, _ in model.named_modules())
    del model  # not kept alive by the traceback below: MLX arrays freed at interpreter exit can abort it
    if not has_down:
        recipe = next(v.name for v in parsed if v.options is not None and v.options.quant_predicate)
        raise UnsupportedModelError(
            f"{recipe}: mlx-lm's mixed recipes need down_proj layers, which {name} "
            f"({config.get('model_type')}) does not have; choose plain bits instead."
        )


def _check_out_dir(out_dir: Path, model_id: str, outputs: list[Path]) -> None:
    """Variant folders already in `out_dir` are reused: refuse when an earlier lab made them from other weights."""
    try:
        old = modelfolder.read_small_json(out_dir, RESULTS_FILE) or {}
    except MlxtuiError:
        old = {}
    reference = old.get("reference") if isinstance(old.get("reference"), dict) else {}
    if reference.get("model_id") not in (None, model_id) and any(p.exists() for p in outputs):
        raise InvalidInputError(
            f"{out_dir} holds variants made from other weights (another model, or an earlier version of this one); "
            "give another --output folder or remove that one."
        )


def _reference_size(folder: Path) -> tuple[int, float | None]:
    """The unquantized weights' bytes on disk and bits per weight (from the safetensors headers)."""
    totals = modelfolder.safetensors_totals(folder)
    size = _weights_bytes(folder)
    return size, (size * 8 / totals[0] if totals and totals[0] else None)


def _model_identity(folder: Path, repo: str | None = None) -> str:
    """Changes when the weights or config change: names, sizes and modification times of the files; for a
    Hub repo, its snapshot folder, whose name is the commit."""
    if repo is not None:
        return f"{repo}@{folder.resolve()}"
    parts = [str(folder.resolve())]
    for path in sorted(folder.glob("*.safetensors")) + [folder / "config.json"]:
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(parts)


def _read_text(data: str | None, ctx: Context) -> tuple[str, str, str]:
    """(name, description, text) of the evaluation text: a file, a Hub dataset (hf://datasets/...), or the
    built-in default. A Hub dataset is fetched through `ctx`'s Hub client (lab_data.py)."""
    if not data or data == BUILTIN_NAME:
        return BUILTIN_NAME, describe_builtin(), builtin_text("eval")
    if is_hub_url(data):
        return read_hub_text(ctx, data, MAX_DATA_BYTES)
    path = Path(data).expanduser()
    if not path.exists():
        raise NotFoundError(f"Evaluation text {data} does not exist; give a text file, or leave --data out for the built-in text.")
    if not path.is_file():
        raise InvalidInputError(f"Evaluation text {data} is not a file; give a text file, or leave --data out for the built-in text.")
    if path.stat().st_size > MAX_DATA_BYTES:
        raise InvalidInputError(f"{path.name} is larger than {MAX_DATA_BYTES >> 20} MB; give a shorter evaluation text.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"{path.name} could not be read as UTF-8 text: {error}.") from None
    return path.name, f"file {path.name} ({len(text)} characters)", text


class LabService:
    """Plans and runs labs; the variants' folders and results live under `out_dir`."""

    def __init__(self, ctx: Context, *, python: str | None = None, cache_root: Path | None = None) -> None:
        self.ctx = ctx
        self.python = python or sys.executable
        self.cache_root = cache_root
        #: reference computations this service ran (the cache's worth is observable)
        self.reference_runs = 0

    async def plan(
        self,
        source: str,
        variants: str | list[str],
        *,
        data: str | None = None,
        seq_len: int = DEFAULT_SEQ_LEN,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
        out_dir: Path | None = None,
    ) -> LabPlan:
        """Check everything before work: raise MlxtuiError with one sentence when something is wrong."""
        parsed = parse_variants(variants)
        if is_hub_url(data):
            parse_hub_url(data)  # a malformed URL costs no download of the model's files
        if seq_len < 8:
            raise InvalidInputError(f"A sequence length of {seq_len} tokens is too short to measure; use 64 or more.")
        folder = Path(source).expanduser()
        repo = None
        if not folder.is_dir():
            if not modelfolder.is_repo_id(source):
                raise NotFoundError(f"{source} is not a model folder (nor a repo id owner/name).")
            # A repo: only its small files now (config, tokenizer), so a bad input costs no weights download
            repo = source
            folder = await asyncio.to_thread(self._download, repo, small=True)
        folder = folder.resolve()
        base = repo.split("/")[-1] if repo else folder.name  # a snapshot folder is named by its commit
        config = modelfolder.read_config(folder)
        if modelfolder.is_quantized(config, modelfolder.read_provenance(folder)):
            raise UnsupportedModelError(
                f"{base} is already quantized ({modelfolder.quant_label(config)}); "
                "the lab needs the unquantized model as its reference."
            )
        files = sorted(p.name for p in folder.iterdir()) if repo is None else await asyncio.to_thread(self._repo_files, repo)
        if not any(name.endswith(".safetensors") for name in files):
            raise NotFoundError(f"{base} has no safetensors weights.")
        from mlxtui.services.support import support_problems

        problems = support_problems(config, files)
        if problems:
            raise UnsupportedModelError(f"{base} can't be quantized by mlx-lm: " + " ".join(problems))
        for variant in parsed:
            check_variant(variant, config)
        name, description, text = await asyncio.to_thread(_read_text, data, self.ctx)
        out_dir = Path(out_dir) if out_dir else self.ctx.settings.models_dir() / "lab" / base
        plan = await asyncio.to_thread(
            self._tokenize, source, folder, config, parsed, name, description, text, seq_len, max_sequences, out_dir,
            repo,
        )
        return plan

    # -- a Hub source: one download ------------------------------------------------------------------

    def _download(self, repo: str, *, small: bool = False) -> Path:
        """The repo's snapshot in the Hugging Face cache: its small files, or everything mlx-lm loads."""
        from huggingface_hub import snapshot_download

        from mlxtui.services.convert_options import ALLOW_PATTERNS
        from mlxtui.services.hubclient import map_error, resolve_token

        patterns = [p for p in ALLOW_PATTERNS if "safetensors" not in p] if small else list(ALLOW_PATTERNS)
        try:
            return Path(snapshot_download(repo, allow_patterns=patterns, endpoint=self.ctx.endpoint,
                                          token=resolve_token(self.ctx)))
        except Exception as error:  # noqa: BLE001 - every Hub failure becomes one sentence
            raise map_error(error, repo, self.ctx.endpoint) from None

    def _repo_files(self, repo: str) -> list[str]:
        from mlxtui.services.hubclient import make_api, map_error

        try:
            return sorted(make_api(self.ctx).list_repo_files(repo))
        except Exception as error:  # noqa: BLE001
            raise map_error(error, repo, self.ctx.endpoint) from None

    def _tokenize(self, source: str, folder: Path, config: dict[str, Any], parsed: list[LabVariant], name: str,
                  description: str, text: str, seq_len: int, max_sequences: int, out_dir: Path,
                  repo: str | None) -> LabPlan:
        import numpy as np
        from mlx_lm.utils import load_tokenizer

        base = repo.split("/")[-1] if repo else folder.name
        if any(v.options is not None and v.options.quant_predicate for v in parsed):
            _check_recipe_layers(base, config, parsed)
        tokenizer = load_tokenizer(folder)
        ids = np.array(tokenizer.encode(text), dtype=np.int32)
        n_seq = min(len(ids) // seq_len, max_sequences) if max_sequences > 0 else len(ids) // seq_len
        if n_seq < 1:
            raise InvalidInputError(
                f"The evaluation text ({description}) has {len(ids)} tokens, fewer than one sequence of {seq_len}; "
                "give a longer text or a shorter --seq-len."
            )
        data = ids[: n_seq * seq_len].reshape(n_seq, seq_len)
        # Calibration for the learned methods: the same source, but not the evaluated tokens where possible.
        if name == BUILTIN_NAME:
            calib_ids = np.array(tokenizer.encode(builtin_text("calib")), dtype=np.int32)
        else:
            calib_ids = ids
        n_calib = max(1, min(len(calib_ids) // seq_len, 32))
        calib = calib_ids[: n_calib * seq_len].reshape(-1, seq_len) if len(calib_ids) >= seq_len else data[:1]
        model_id = hashlib.sha256(_model_identity(folder, repo).encode()).hexdigest()[:32]
        _check_out_dir(out_dir, model_id, [out_dir / f"{base}-{v.name}" for v in parsed])
        digest = hashlib.sha256(model_id.encode() + data.tobytes() + str(seq_len).encode()).hexdigest()[:32]
        work = paths.data_dir() / "lab" / "work" / digest
        work.mkdir(parents=True, exist_ok=True)
        np.save(work / "tokens.npy", data)
        np.save(work / "calib.npy", calib)
        outputs = tuple(out_dir / f"{base}-{v.name}" for v in parsed)
        ref_bytes, bpw = _reference_size(folder)
        return LabPlan(
            source=source, folder=folder, config=config, variants=tuple(parsed), outputs=outputs, out_dir=out_dir,
            text_name=name, text_description=description, tokens=int(len(ids)), seq_len=seq_len, sequences=n_seq,
            work=work, cache=(self.cache_root or reference_cache_dir()) / digest, ref_bytes=ref_bytes,
            ref_bits_per_weight=bpw, repo=repo, model_id=model_id,
        )

    # -- run ---------------------------------------------------------------------------------------

    async def run(self, plan: LabPlan, *, prompt_tokens: int = 128, gen_tokens: int = 64, trials: int = 2) -> AsyncIterator[object]:
        """Reference, builds, measurements; ends with LabFinished. Closing it early stops and cleans up.

        One lab at a time per user (the pane's detached jobs and the command alike): a second one waits,
        saying so, until the first ends; each measures on an otherwise idle model process."""
        import fcntl

        lock_path = paths.data_dir() / "lab" / "queue.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield LabProgress("queued", message="waiting for the lab that is running to finish (one at a time)")
                while True:  # polled, not a blocking wait in a thread: closing this generator must stop it at once
                    await asyncio.sleep(0.5)
                    try:
                        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        continue
            async with aclosing(self._run(plan, prompt_tokens, gen_tokens, trials)) as events:
                async for event in events:
                    yield event
            # the lock goes with the file's closing (and with the process, however it ends)

    async def _run(self, plan: LabPlan, prompt_tokens: int, gen_tokens: int, trials: int) -> AsyncIterator[object]:
        start = time.perf_counter()
        if plan.repo is not None:
            yield LabProgress("download", message=f"downloading {plan.repo} (once, for every variant)")
            folder = await asyncio.to_thread(self._download, plan.repo)
            ref_bytes, bpw = _reference_size(folder)
            plan = replace(plan, folder=folder.resolve(), ref_bytes=ref_bytes, ref_bits_per_weight=bpw)
        plan.out_dir.mkdir(parents=True, exist_ok=True)
        ref_meta = self._reference_meta(plan)
        cached = ref_meta is not None
        lab_cache.mark_used(plan.cache)
        if ref_meta is None:
            yield LabProgress("reference", message="computing the reference's distributions")
            spec = self._measure_spec(plan, plan.folder, "reference")
            async with aclosing(self._subprocess(plan, "lab_measure", spec, "reference", "")) as events:
                async for event in events:
                    yield event
            self.reference_runs += 1
            ref_meta = self._reference_meta(plan)
            if ref_meta is None:
                raise ConversionError("The reference pass finished without writing its cache; see the lab log.")
        yield LabReferenceReady(ref_meta["perplexity"], ref_meta["perplexity_se"], cached)
        await asyncio.to_thread(lab_cache.prune, plan.cache.parent, plan.cache)

        todo = [(v, out) for v, out in zip(plan.variants, plan.outputs) if not (out / "config.json").is_file()]
        plain = [(v, out) for v, out in todo if not v.learned]
        # Each inner stream is closed explicitly: closing this one must stop and clean up at once, not
        # whenever the event loop gets round to finalizing an abandoned generator.
        if plain:
            async with aclosing(self._convert(plan, plain)) as events:
                async for event in events:
                    yield event
        for variant, out in todo:
            if variant.learned:
                async with aclosing(self._build_learned(plan, variant, out)) as events:
                    async for event in events:
                        yield event
        rows = []
        for variant, out in zip(plan.variants, plan.outputs):
            yield LabProgress("measure", variant.name, message=f"measuring {variant.name}")
            spec = self._measure_spec(plan, out, "variant", prompt_tokens, gen_tokens, trials)
            async with aclosing(self._subprocess(plan, "lab_measure", spec, "measure", variant.name)) as events:
                async for event in events:
                    yield event
            figures = json.loads(Path(spec["result"]).read_text())
            row = {"name": variant.name, "method": variant.method or "convert", **figures,
                   "bytes": _weights_bytes(out), "path": str(out)}
            rows.append(row)
            yield LabVariantMeasured(row)
        result = result_object(plan, ref_meta, cached, rows, time.perf_counter() - start)
        _save_results(plan.out_dir / RESULTS_FILE, result)
        yield LabFinished(result)

    @staticmethod
    def _reference_meta(plan: LabPlan) -> dict[str, Any] | None:
        """The cached reference's figures, or None when this model, text and length were never measured."""
        try:
            return json.loads((plan.cache / "meta.json").read_text())
        except (OSError, ValueError):
            return None

    def _measure_spec(self, plan: LabPlan, model: Path, mode: str, prompt_tokens: int = 128, gen_tokens: int = 64,
                      trials: int = 2) -> dict[str, Any]:
        name = "reference" if mode == "reference" else model.name
        return {
            "mode": mode, "model": str(model), "tokens": str(plan.work / "tokens.npy"), "cache": str(plan.cache),
            "batch_size": 8, "prompt_tokens": prompt_tokens, "gen_tokens": gen_tokens, "trials": trials,
            "result": str(plan.work / f"result-{name}.json"),
        }

    async def _subprocess(self, plan: LabPlan, module: str, spec: dict[str, Any], stage: str, variant: str,
                          cleanup: Path | None = None) -> AsyncIterator[LabProgress]:
        """Run ``python -m mlxtui.services.<module> SPEC`` in its own session; relay its progress lines.

        Closing the iterator (cancel) kills the process group and removes `cleanup`."""
        spec_path = plan.work / f"{stage}-{variant or 'reference'}.spec.json"
        spec_path.write_text(json.dumps(spec))
        log_path = plan.work / f"{stage}-{variant or 'reference'}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                   TQDM_DISABLE="1")
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                self.python, "-m", f"mlxtui.services.{module}", str(spec_path),
                stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
                env=env, start_new_session=True,
            )
        finished = False
        try:
            assert proc.stdout is not None
            async for line in proc.stdout:
                try:
                    data = json.loads(line)
                except ValueError:
                    continue
                if isinstance(data, dict) and "done" in data:
                    yield LabProgress(stage, variant, data["done"], data.get("total"))
            code = await proc.wait()
            finished = True
            if code != 0:
                tail = " ".join(log_path.read_text(errors="replace").strip().splitlines()[-1:])
                raise ConversionError(f"{stage} of {variant or 'the reference'} failed: {tail or f'exit code {code}'}"
                                      f" (log: {log_path}).")
        finally:
            if not finished:
                await asyncio.shield(_stop(proc))
                if cleanup is not None:
                    shutil.rmtree(cleanup, ignore_errors=True)

    async def _convert(self, plan: LabPlan, plain: list[tuple[LabVariant, Path]]) -> AsyncIterator[object]:
        """The plain variants as one job of the convert service (its queue, progress, cancel, partials)."""
        from mlxtui.services.convert import ConvertService
        from mlxtui.services.events import ConvertFinished, ConvertProgress, ConvertVariantDone

        service = ConvertService(self.ctx, python=self.python)
        names = [v.name for v, _ in plain]
        stream = service.convert(str(plan.folder), [v.options for v, _ in plain], outputs=[out for _, out in plain])
        async with aclosing(stream) as events:
            async for event in events:
                match event:
                    case ConvertProgress(stage=stage, variant=index, done=done, total=total):
                        name = names[index] if 0 <= index < len(names) else ""
                        yield LabProgress("convert", name, done, total, message=stage)
                    case ConvertVariantDone(variant=index):
                        yield LabProgress("convert", names[index] if 0 <= index < len(names) else "", 1, 1, "built")
                    case ConvertFinished(state=state, message=message) if state != "done":
                        raise ConversionError(f"Building the variants failed: {message}")

    async def _build_learned(self, plan: LabPlan, variant: LabVariant, out: Path) -> AsyncIterator[object]:
        partial = out.parent / f".{out.name}.partial-lab"
        spec = {"method": variant.method, "bits": variant.bits, "group_size": variant.group_size,
                "target_bpw": variant.target_bpw, "source": str(plan.folder), "tokens": str(plan.work / "calib.npy"),
                "partial": str(partial), "output": str(out)}
        yield LabProgress("build", variant.name, message=f"building {variant.name} with mlx-lm's {variant.method}")
        async with aclosing(self._subprocess(plan, "lab_build", spec, "build", variant.name, cleanup=partial)) as events:
            async for event in events:
                yield event


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, SIGKILL after a few seconds."""
    if proc.returncode is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            await asyncio.wait_for(proc.wait(), wait)
            return
        except asyncio.TimeoutError:
            continue


def _save_results(path: Path, result: dict[str, Any]) -> None:
    """Keep the folder's results file: rows of earlier labs on the same model, text and length stay, this
    lab's rows replace theirs by name (so the card can show every variant measured the same way)."""
    rows = {row["name"]: row for row in result["variants"]}
    try:
        old = modelfolder.read_small_json(path.parent, path.name) or {}
    except MlxtuiError:
        old = {}
    same = all(old.get(k) == result.get(k) for k in ("eval_text", "seq_len", "sequences")) and \
        (old.get("reference") or {}).get("path") == result["reference"]["path"]
    merged = [row for row in old.get("variants", []) if same and isinstance(row, dict) and row.get("name") not in rows]
    write_text_atomic(path, json.dumps({**result, "variants": merged + result["variants"]}, indent=2) + "\n")


def result_object(plan: LabPlan, ref: dict[str, Any], cached: bool, rows: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    """The lab's result as ``mlxtui lab --json`` prints it (and the pane and the card read it)."""
    return {
        "reference": {
            "name": plan.source, "path": str(plan.folder), "bytes": plan.ref_bytes,
            "bits_per_weight": plan.ref_bits_per_weight, "perplexity": ref["perplexity"],
            "perplexity_se": ref["perplexity_se"], "cached": cached, "model_id": plan.model_id,
        },
        "eval_text": plan.text_description,
        "eval_tokens": plan.tokens,
        "tokens_evaluated": plan.sequences * (plan.seq_len - 1),
        "seq_len": plan.seq_len,
        "sequences": plan.sequences,
        "variants": rows,
        "elapsed_s": round(elapsed, 2),
    }

