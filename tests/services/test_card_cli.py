"""`mlxtui card` end to end through mlxtui.cli.main against a devhub holding the original model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxtui.cli import main

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

SOURCE = "h2oai/h2o-danube2-tiny-chat"


@pytest.fixture
def hubx(devhub_factory, source_folder: Path):
    hub = devhub_factory()
    hub.import_folder(SOURCE, source_folder)
    return hub


def test_card_writes_readme_then_check_passes(hubx, mlx_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", hubx.url, "card", str(mlx_folder)]) == 0
    text = (mlx_folder / "README.md").read_text()
    assert "## Conversion" in text and "base_model: h2oai/h2o-danube2-tiny-chat" in text
    assert f"({hubx.url}/{SOURCE})" in text  # the link points at the endpoint in use
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
