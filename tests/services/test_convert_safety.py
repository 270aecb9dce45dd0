"""Jobs never lose data: paths made absolute before the worker starts, outputs checked before any download,
a full disk during the save, liveness from the worker's lock (never a bare pid), `jobs --delete` confined to
the jobs directory. Each bad input: one line, a documented exit code, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlxtui.services import Context
from mlxtui.services import jobs as jobstore
from mlxtui.services.convert import ConvertOptions, ConvertService
from mlxtui.services.convert_worker import DISK_FULL
from mlxtui.services.errors import InvalidInputError, NotFoundError

pytestmark = pytest.mark.timeout(180)


def _mlxtui(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlxtui", "--endpoint", "http://127.0.0.1:9", *args],
                          capture_output=True, text=True, timeout=150, cwd=cwd, env=env)


def _settings(home: Path, output_dir: str) -> None:
    folder = home / "config" / "mlxtui"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(f'[convert]\noutput_dir = "{output_dir}"\n')


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.mark.parametrize("output_dir", ["relmodels", "../up/models"])
def test_a_relative_output_dir_means_relative_to_where_the_command_ran(
    make_tiny_model, isolated_home: Path, tmp_path: Path, output_dir: str
) -> None:
    src = make_tiny_model("tiny")
    _settings(isolated_home, output_dir)
    work = tmp_path / "work" / "here"
    work.mkdir(parents=True)
    result = _mlxtui("convert", "--hf-path", str(src), "-q", cwd=work)
    assert result.returncode == 0, result.stderr
    expected = Path(os.path.normpath(work / output_dir)) / "tiny-4bit"
    assert result.stdout.strip() == str(expected)  # the printed path exists and is the model
    assert (expected / "config.json").is_file()
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    job_dir = next(jobs.iterdir())
    assert not any(p.name == "config.json" for p in job_dir.rglob("*")), "nothing of the model in the job folder"
    assert json.loads((job_dir / "job.json").read_text())["variants"][0]["output"] == str(expected)

    deleted = _mlxtui("jobs", "--delete", job_dir.name, cwd=work)
    assert deleted.returncode == 0, deleted.stderr
    assert not job_dir.exists() and (expected / "config.json").is_file(), "forgetting a job keeps its model"


def test_a_relative_xdg_data_home_does_not_fail_the_job(make_tiny_model, tmp_path: Path) -> None:
    src = make_tiny_model("tiny")
    work = tmp_path / "cwd"
    work.mkdir()
    home = tmp_path / "home-of-this-test"  # where ~/.local/share is when XDG_DATA_HOME is ignored
    env = dict(os.environ, XDG_DATA_HOME="reldata", HOME=str(home))
    result = _mlxtui("convert", "--hf-path", str(src), "-q", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip())
    assert out.is_absolute() and (out / "config.json").is_file()
    assert out.is_relative_to(home / ".local" / "share")  # the XDG default, under the home folder
    assert not (work / "reldata").exists()  # a relative XDG dir is ignored, as the XDG spec says


@pytest.mark.parametrize("target", ["/", "{models}", "{models}/tiny-4bit", "../jobs", "..", ".", "{job}/..", ""])
def test_jobs_delete_takes_only_a_job_id(make_tiny_model, isolated_home: Path, target: str) -> None:
    src = make_tiny_model("tiny")
    assert _mlxtui("convert", "--hf-path", str(src), "-q").returncode == 0
    models = isolated_home / "data" / "models" / "mlx"
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    job = next(jobs.iterdir())
    (models / "tiny-4bit" / "job.json").write_text("{}")  # even a model folder that holds a job.json
    before = _files(isolated_home / "data")
    result = _mlxtui("jobs", "--delete", target.format(models=models, job=job))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a job id" in lines[0], result.stderr
    assert _files(isolated_home / "data") == before, "nothing was deleted"


def test_output_under_a_file_is_refused_before_anything_runs(make_tiny_model, tmp_path: Path, isolated_home: Path) -> None:
    src = make_tiny_model("tiny")
    (tmp_path / "afile").write_text("not a folder")
    result = _mlxtui("convert", "--hf-path", str(src), "-q", "--mlx-path", str(tmp_path / "afile" / "sub" / "out"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a file, not a folder" in lines[0], result.stderr
    assert (tmp_path / "afile").read_text() == "not a folder"
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir()), "a refused conversion leaves no job behind"


def _unshare() -> list[str]:
    """A private mount namespace (unprivileged user namespaces), where a test may mount a small or read-only tmpfs."""
    if sys.platform != "linux":
        pytest.skip("user and mount namespaces are Linux's")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("unshare -rm is needed for the disk tests and does not work on this Linux CI machine")
        pytest.skip("needs unshare -rm (user and mount namespaces)")
    return ["unshare", "-rm"]


def test_a_read_only_output_folder_is_refused_at_plan_time(make_tiny_model, tmp_path: Path, isolated_home: Path) -> None:
    src = make_tiny_model("tiny")
    ro = tmp_path / "ro"
    ro.mkdir()
    script = f"mount -t tmpfs -o ro,size=1m tmpfs {ro} && exec {sys.executable} -m mlxtui --endpoint http://127.0.0.1:9 " \
             f"convert --hf-path {src} -q --mlx-path {ro}/out"
    result = subprocess.run([*_unshare(), "sh", "-c", script], capture_output=True, text=True, timeout=150)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not writable (it is on a read-only disk)" in lines[0], result.stderr
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir())


_DISK_FULL_SCRIPT = textwrap.dedent("""
    import asyncio, json, os, subprocess, sys
    from pathlib import Path
    from mlxtui.services import Context
    from mlxtui.services.convert import ConvertOptions, ConvertService

    src, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(out_dir)], check=True)

    async def main():
        service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
        plan = await service.plan(str(src), ConvertOptions(quantize=True, dtype="float32"), outputs=[out_dir / "tiny-4bit"])
        # another program fills the disk between the checks and the save
        free = os.statvfs(out_dir).f_bavail * os.statvfs(out_dir).f_frsize
        with open(out_dir / "filler", "wb") as f:
            f.write(b"\\0" * (free - 8192))
        job = await service.start(plan)
        events = [e async for e in service.follow(job.id, logs=False)]
        (out_dir / "filler").unlink()
        print(json.dumps({"state": events[-1].state, "message": events[-1].message,
                          "left": sorted(os.listdir(out_dir))}))

    asyncio.run(main())
""")


def test_a_disk_that_fills_during_the_save_gives_the_documented_message_and_removes_the_partial(
    make_tiny_model, tmp_path: Path
) -> None:
    """A real full disk (a 2 MB tmpfs): mlx's "[write] Unable to write" becomes docs/convert.md's message."""
    src = make_tiny_model("tiny")
    out_dir = tmp_path / "small-disk"
    out_dir.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(_DISK_FULL_SCRIPT)
    result = subprocess.run([*_unshare(), sys.executable, str(script), str(src), str(out_dir)],
                            capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["state"] == "failed"
    assert outcome["message"] == DISK_FULL, outcome
    assert outcome["left"] == [], "no partial output is left on the full disk"


async def test_a_stale_job_with_a_reused_pid_is_not_running_and_cancel_never_signals_that_process(
    make_tiny_model, tmp_path: Path
) -> None:
    """job.json says running with the pid of an unrelated live process and no worker holds the lock."""
    src = make_tiny_model("tiny")
    service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
    plan = await service.plan(str(src), ConvertOptions(quantize=True))
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        job = jobstore.Job(id=jobstore.new_job_id(), source=plan.source, kind="local", state="running",
                           pid=stranger.pid, variants=[jobstore.Variant(options={}, output=str(plan.variants[0][1]),
                                                                        label="4bit", state="running")])
        job.dir = service.root / job.id
        job.save()
        (job.dir / jobstore.LOCK_FILE).touch()  # the worker died: its lock file stays, unlocked
        partial = jobstore.partial_dir(plan.variants[0][1], job.id)
        partial.mkdir(parents=True)
        listed = service.jobs()
        assert [j.state for j in listed] == ["failed"] and "stopped without finishing" in listed[0].message
        assert not partial.exists()
        assert service.cancel_sync(job.id, grace_s=1).state == "failed"
        assert stranger.poll() is None, "the unrelated process was never signalled"
    finally:
        stranger.kill()
        stranger.wait()


async def test_a_running_worker_holds_its_lock_until_it_exits(make_tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLXTUI_CONVERT_SLOWDOWN_S", "0.3")
    src = make_tiny_model("tiny")
    service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
    job = await service.start(await service.plan(str(src), ConvertOptions(quantize=True, dtype="float32")))
    assert jobstore.worker_alive(job.dir) is True  # from before the worker's first line: no gap after the spawn
    cancelled = await service.cancel(job.id)
    assert cancelled.state == "cancelled"
    deadline = time.monotonic() + 30
    while jobstore.worker_alive(job.dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobstore.worker_alive(job.dir) is False


@pytest.mark.parametrize("job_id", ["../x", "/tmp", "..", "a/b", ".hidden"])
def test_job_commands_refuse_anything_but_a_job_id(job_id: str) -> None:
    service = ConvertService(Context(endpoint="http://127.0.0.1:9"))
    with pytest.raises(InvalidInputError, match="is not a job id"):
        service.delete_job(job_id)
    with pytest.raises(InvalidInputError, match="is not a job id"):
        service.cancel_sync(job_id)
    with pytest.raises(NotFoundError):
        service.job("20990101-000000-ffff")


def test_liveness_is_whether_the_lock_is_held(tmp_path: Path) -> None:
    """The liveness rule on its own: an unlocked lock file is a dead worker, a missing one a job not started."""
    assert jobstore.worker_alive(tmp_path) is None
    fd = jobstore.acquire_lock(tmp_path)
    try:
        assert jobstore.worker_alive(tmp_path) is True
        with pytest.raises(BlockingIOError):
            jobstore.acquire_lock(tmp_path)
    finally:
        os.close(fd)
    assert jobstore.worker_alive(tmp_path) is False


def test_a_disk_too_small_for_the_output_is_refused_before_anything_runs(make_tiny_model, tmp_path: Path,
                                                                         isolated_home: Path) -> None:
    """A real 64 kB disk: the plan's estimate (the shared size estimator) does not fit, so no job starts."""
    src = make_tiny_model("tiny")
    small = tmp_path / "small"
    small.mkdir()
    script = f"mount -t tmpfs -o size=64k tmpfs {small} && exec {sys.executable} -m mlxtui --endpoint " \
             f"http://127.0.0.1:9 convert --hf-path {src} -q --mlx-path {small}/out"
    result = subprocess.run([*_unshare(), "sh", "-c", script], capture_output=True, text=True, timeout=150)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Not enough disk space on the output folder" in lines[0], result.stderr
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir())


async def test_a_repo_with_only_pytorch_weights_is_refused_with_inspects_verdict(
    fresh_hub, make_tiny_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inspect and Convert give one verdict (services.support): refused before any download, in its words."""
    from mlxtui.services.errors import UnsupportedModelError
    from mlxtui.services.support import verdict

    folder = make_tiny_model("bin-only")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    fresh_hub.import_folder("tests/bin-only", folder)
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    fresh_hub.clear_requests()
    with pytest.raises(UnsupportedModelError) as refused:
        await ConvertService(ctx).plan("tests/bin-only", ConvertOptions(quantize=True))
    shared = verdict(json.loads((folder / "config.json").read_text()), sorted(p.name for p in folder.iterdir()))
    assert not shared.supported and shared.problems[0] in str(refused.value)
    fetched = [r.path for r in list(fresh_hub.requests) + list(fresh_hub.cdn_requests)]
    assert not any(p.endswith(".bin") for p in fetched), fetched


def test_a_read_only_download_cache_is_refused_before_any_download(fresh_hub, isolated_home: Path) -> None:
    cache = isolated_home / "hf" / "hub"
    cache.mkdir(parents=True, exist_ok=True)
    fresh_hub.clear_requests()
    script = f"mount -t tmpfs -o ro,size=1m tmpfs {cache} && exec {sys.executable} -m mlxtui --endpoint " \
             f"{fresh_hub.url} convert --hf-path h2oai/h2o-danube2-tiny-chat -q"
    result = subprocess.run([*_unshare(), "sh", "-c", script], capture_output=True, text=True, timeout=150)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Hugging Face cache" in lines[0] and "read-only disk" in lines[0], result.stderr
    fetched = [r.path for r in list(fresh_hub.requests) + list(fresh_hub.cdn_requests)]
    assert not any("safetensors" in p for p in fetched), fetched
    jobs = isolated_home / "data" / "mlxtui" / "jobs"
    assert not jobs.exists() or not any(jobs.iterdir())


def test_escape_sequences_in_names_reach_the_terminal_only_as_visible_text(make_tiny_model, tmp_path: Path) -> None:
    """A source folder whose name holds terminal escapes: progress lines and `mlxtui jobs` show them as ^[."""
    hostile = make_tiny_model("tiny\x1b]0;pwned\x07\x1b[2J")
    result = _mlxtui("convert", "--hf-path", str(hostile), "-q")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr and "^[]0;pwned^G^[[2J" in result.stderr
    listed = _mlxtui("jobs")
    assert listed.returncode == 0 and "\x1b" not in listed.stdout and "^[[2J" in listed.stdout


def test_a_jobs_folder_that_cannot_be_created_is_refused_before_anything_runs(make_tiny_model, isolated_home: Path) -> None:
    src = make_tiny_model("tiny")
    (isolated_home / "data" / "mlxtui").mkdir(parents=True)
    (isolated_home / "data" / "mlxtui" / "jobs").write_text("a file where the jobs folder goes")
    result = _mlxtui("convert", "--hf-path", str(src), "-q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "The jobs folder" in lines[0] and "is a file, not a folder" in lines[0], result.stderr
    assert (isolated_home / "data" / "mlxtui" / "jobs").read_text() == "a file where the jobs folder goes"
    models = isolated_home / "data" / "models" / "mlx"
    assert not models.exists() or not any(models.iterdir())
