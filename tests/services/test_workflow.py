"""The model in work: carried from step to step, described in one line, home folder shortened."""

from __future__ import annotations

import json
from pathlib import Path

from mlxtui.services.modelfolder import PROVENANCE_FILE
from mlxtui.services.workflow import ModelInWork, short_path


def test_a_thread_from_source_to_folder_to_target() -> None:
    home = Path.home()
    work = ModelInWork().with_source("h2oai/danube")
    work = work.with_folder(str(home / "models" / "danube-4bit"), "h2oai/danube").with_target("alice/danube-4bit")
    assert work.describe() == "h2oai/danube → ~/models/danube-4bit → alice/danube-4bit"


def test_a_new_source_starts_a_new_thread_and_the_same_one_keeps_it() -> None:
    work = ModelInWork(source="a/b", folder="/m/b-4bit", target="me/b-4bit")
    assert work.with_source("a/b") is work
    assert work.with_source("c/d") == ModelInWork(source="c/d")


def test_a_folders_source_comes_from_its_provenance(tmp_path: Path) -> None:
    (tmp_path / PROVENANCE_FILE).write_text(json.dumps({"source": "org/model", "options": {}}))
    assert ModelInWork().with_folder(str(tmp_path)).source == "org/model"
    (tmp_path / PROVENANCE_FILE).write_text(json.dumps({"source": 5}))  # a hostile provenance file
    assert ModelInWork().with_folder(str(tmp_path)).source is None


def test_escapes_in_names_are_shown_not_obeyed() -> None:
    assert "\x1b" not in ModelInWork(source="evil\x1b[2J/x").describe()


def test_short_path_only_shortens_the_home_folder() -> None:
    home = str(Path.home())
    assert short_path(home + "/a") == "~/a"
    assert short_path(home + "x/a") == home + "x/a"
    assert short_path("/tmp/a") == "/tmp/a"


def test_a_step_opens_the_model_in_work_and_only_while_its_folder_exists(tmp_path: Path) -> None:
    from mlxtui.services import Context
    from mlxtui.services.workflow import folder_to_open

    work = ModelInWork(source="a/b", folder=str(tmp_path))
    assert folder_to_open(work, Context()) == str(tmp_path)
    gone = ModelInWork(source="a/b", folder=str(tmp_path / "deleted"))
    assert folder_to_open(gone, Context()) is None  # an empty library has no newest conversion either
