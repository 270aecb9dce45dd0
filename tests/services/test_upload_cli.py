"""`mlxtui upload` end to end through mlxtui.cli.main against a devhub."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxtui.cli import main

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

SOURCE = "h2oai/h2o-danube2-tiny-chat"


def test_upload_with_yes(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "mlx-community/h2o-4bit", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "✓ Token: alice" in out and "Repo:       mlx-community/h2o-4bit (public)" in out
    assert f"{hubx.url}/mlx-community/h2o-4bit" in out and "Verified" in out
    assert hubx.write_token not in out


def test_upload_refused_without_a_clean_card(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    # mlx-lm's README has no body: the preflight refuses it
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/x", "--yes"]) == 1
    captured = capsys.readouterr()
    assert "✗ README.md" in captured.out and "upload refused" in captured.err
    from huggingface_hub import HfApi

    assert not HfApi(endpoint=hubx.url, token=hubx.write_token).repo_exists("alice/x")


def test_upload_without_a_terminal_needs_yes(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    main(["--endpoint", hubx.url, "card", str(mlx_folder)])
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/x"]) == 1
    assert "--yes" in capsys.readouterr().err


def test_upload_invalid_repo_id(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/bad name", "--yes"]) == 2  # bad input
    assert "not a valid repo id" in capsys.readouterr().err


def test_a_secret_is_refused_with_its_line_then_exclude_sends_the_rest(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    token = "ghp_" + "Xy7" * 12
    (mlx_folder / "notes.txt").write_text(f"first line\nGITHUB_TOKEN={token}\n")
    capsys.readouterr()
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/cli-secret", "--yes"]) == 1
    captured = capsys.readouterr()
    assert "✗ Secrets: notes.txt line 2: GitHub token ghp_… (40 characters)" in captured.out
    assert token not in captured.out + captured.err and "--exclude" in captured.err
    from huggingface_hub import HfApi

    assert not HfApi(endpoint=hubx.url, token=hubx.write_token).repo_exists("alice/cli-secret")
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/cli-secret", "--exclude", "notes.txt",
                 "--yes"]) == 0
    out = capsys.readouterr().out
    assert "✓ Excluded: not sent: notes.txt" in out and "Verified" in out
    assert "notes.txt" not in HfApi(endpoint=hubx.url, token=hubx.write_token).list_repo_files("alice/cli-secret")


def test_deletions_are_listed_before_the_upload(hubx, mlx_folder: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    (mlx_folder / "old_config.json").write_text("{}")
    (mlx_folder / "LICENSE").write_text("MIT\n")
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/cli-mirror", "--yes"]) == 0
    (mlx_folder / "old_config.json").unlink()
    (mlx_folder / "LICENSE").unlink()
    capsys.readouterr()
    assert main(["--endpoint", hubx.url, "upload", str(mlx_folder), "alice/cli-mirror", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Deleted on the Hub in the same commit (1):\n  - old_config.json" in out
    assert "Kept on the Hub (not in the folder; --delete-others deletes them): LICENSE" in out
    assert "1 stale file deleted" in out
