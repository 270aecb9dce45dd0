"""`mlxtui card` end to end through mlxtui.cli.main against a devhub holding the original model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxtui.cli import main

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

SOURCE = "h2oai/h2o-danube2-tiny-chat"


def test_card_writes_readme_then_check_passes(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    text = (mlx_folder / "README.md").read_text()
    assert "## Conversion" in text and "base_model: h2oai/h2o-danube2-tiny-chat" in text
    # a Hub on this machine (the demo's port changes every run) is never linked: the repo is named by its id
    assert hubx.url.split("://")[1] not in text and f"`{SOURCE}`" in text
    assert "updated" in capsys.readouterr().out
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--check"]) == 0
    assert "README.md: ok" in capsys.readouterr().out
    # running again keeps the file as it is
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    assert (mlx_folder / "README.md").read_text() == text


def test_card_keeps_an_edited_body(hubx, mlx_folder: Path) -> None:
    (mlx_folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n\n# Mine\n\nDo not touch.\n")
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    text = (mlx_folder / "README.md").read_text()
    assert text.endswith("# Mine\n\nDo not touch.\n") and "library_name: mlx" in text


def test_check_fails_on_problems(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (mlx_folder / "README.md").write_text("---\nlicense: mit\nbase_model: nobody/nothing\n---\n\n")
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--check"]) == 1
    out = capsys.readouterr().out
    assert "empty-body" not in out  # messages are for people, codes stay inside
    assert "no text" in out and "pipeline_tag" in out and "'nobody/nothing' was not found" in out


def test_broken_yaml_is_reported_and_the_file_left_alone(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = "---\nlicense: [apache\n---\n\n# x\n"
    (mlx_folder / "README.md").write_text(broken)
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 1
    assert "invalid YAML" in capsys.readouterr().err
    assert (mlx_folder / "README.md").read_text() == broken
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--check"]) == 1
    assert "line 2" in capsys.readouterr().out


def test_license_differing_from_the_source(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    text = (mlx_folder / "README.md").read_text().replace("license: apache-2.0", "license: mit")
    (mlx_folder / "README.md").write_text(text)
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--check"]) == 1
    assert "differs from the original model's 'apache-2.0'" in capsys.readouterr().out


def test_card_on_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["card", str(tmp_path / "nope")]) == 2  # 2: bad input (the CLI-wide exit-code table)
    assert "is not a folder" in capsys.readouterr().err


def test_the_original_card_is_read_from_the_hub(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a README without front matter: everything must come from the original card on the Hub
    (mlx_folder / "README.md").unlink()
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    assert "could not be read" not in capsys.readouterr().err
    text = (mlx_folder / "README.md").read_text()
    for line in ("license: apache-2.0", "- HuggingFaceH4/ultrachat_200k", "- h2o-llmstudio", "pipeline_tag: text-generation"):
        assert line in text, line
    assert "tiny chat model in the style of h2o-danube2" in text  # the original's own description, quoted


def test_card_follows_a_change_of_target_repo_keeping_the_users_edits(
    hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    text = (mlx_folder / "README.md").read_text()
    assert f'load("{mlx_folder.name}")' in text
    # the user edits the body and comments the front matter
    edited = text.replace("---\n", "---\n# reviewed by legal\n", 1).replace("## Conversion", "My own words.\n\n## Conversion")
    (mlx_folder / "README.md").write_text(edited)
    capsys.readouterr()
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--repo", "alice/tiny-4bit"]) == 0
    out = capsys.readouterr().out
    assert "already up to date" not in out
    assert 'changed the usage snippet: load("alice/tiny-4bit")' in out and "changed the title: alice/tiny-4bit" in out
    moved = (mlx_folder / "README.md").read_text()
    assert 'load("alice/tiny-4bit")' in moved and "\n# alice/tiny-4bit\n" in moved
    assert mlx_folder.name + '"' not in moved
    assert "# reviewed by legal\n" in moved and "My own words." in moved
    assert moved == edited.replace(f'load("{mlx_folder.name}")', 'load("alice/tiny-4bit")').replace(
        f"# {mlx_folder.name}\n", "# alice/tiny-4bit\n")  # nothing else changed
    # and again, to another target; then the same one is up to date
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--repo", "bob/tiny-4bit"]) == 0
    assert 'load("bob/tiny-4bit") (was load("alice/tiny-4bit"))' in capsys.readouterr().out
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--repo", "bob/tiny-4bit"]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_card_refuses_a_target_that_is_not_a_repo_id(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    before = (mlx_folder / "README.md").read_text()
    capsys.readouterr()
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder), "--repo", "no spaces/allowed here"]) == 2
    err = capsys.readouterr().err
    assert "not a valid repo id" in err and len(err.strip().splitlines()) == 1
    assert (mlx_folder / "README.md").read_text() == before
