"""Settings: XDG location, atomic round trip, broken files give defaults and a notice, never an overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxtui import paths
from mlxtui.settings import Settings, SettingsLockedError, default_path, load_settings, save_settings


def test_settings_live_under_xdg_config_home(isolated_home: Path) -> None:
    assert default_path() == isolated_home / "config" / "mlxtui" / "config.toml"
    assert paths.models_dir() == isolated_home / "data" / "models" / "mlx"


def test_round_trip_keeps_every_value() -> None:
    settings = Settings(theme="mlxtui-light", endpoint="http://127.0.0.1:8080")
    settings.search.query = "danube"
    settings.search.author = "mlx-community"
    settings.convert.q_bits = 8
    settings.keymap = {"app.help": "f2"}
    save_settings(settings)
    loaded, problems = load_settings()
    assert problems == []
    assert loaded == settings
    # no temporary files left beside it
    assert [p.name for p in default_path().parent.iterdir()] == ["config.toml"]


def test_missing_file_gives_defaults_silently() -> None:
    settings, problems = load_settings()
    assert settings == Settings()
    assert problems == []


def test_broken_toml_gives_defaults_one_notice_and_is_not_overwritten() -> None:
    path = default_path()
    path.parent.mkdir(parents=True)
    path.write_text('theme = "unterminated\n')
    settings, problems = load_settings()
    assert settings == Settings()
    assert len(problems) == 1 and "could not be read" in problems[0] and "left as it is" in problems[0]
    assert path.read_text() == 'theme = "unterminated\n'


def test_wrong_types_keep_defaults_for_those_keys_only() -> None:
    path = default_path()
    path.parent.mkdir(parents=True)
    path.write_text('theme = "mlxtui-light"\nsearch = 3\n[convert]\nq_bits = "four"\n')
    settings, problems = load_settings()
    assert settings.theme == "mlxtui-light"
    assert settings.search.sort == "downloads"
    assert settings.convert.q_bits == 4
    assert len(problems) == 1
    assert "q_bits" in problems[0] and "search" in problems[0]


def test_a_failed_write_leaves_the_old_file_intact(monkeypatch) -> None:
    save_settings(Settings(theme="mlxtui-light"))
    before = default_path().read_text()
    import tomli_w

    def explode(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tomli_w, "dump", explode)
    try:
        save_settings(Settings(theme="mlxtui-dark"))
    except OSError:
        pass
    assert default_path().read_text() == before
    assert [p.name for p in default_path().parent.iterdir()] == ["config.toml"]


def test_a_file_that_failed_to_parse_is_never_written_by_a_later_save() -> None:
    path = default_path()
    path.parent.mkdir(parents=True)
    broken = 'theme = "mlxtui-light"\n[keymap\n"app.help" = "f2"\n'
    path.write_text(broken)
    settings, problems = load_settings()
    assert settings.locked and "not saved until it is fixed" in problems[0]
    settings.search.query = "danube"  # what the first search keystroke does
    with pytest.raises(SettingsLockedError, match="Fix the file"):
        save_settings(settings)
    assert path.read_text() == broken


def test_unknown_keys_are_named_and_kept_and_mistyped_values_survive_a_save() -> None:
    path = default_path()
    path.parent.mkdir(parents=True)
    path.write_text(
        'theme = "mlxtui-light"\nfuture_option = true\n[convert]\nq_bits = "four"\noutput_dir = "/m"\n'
        '[plugins.extra]\nname = "x"\n'
    )
    settings, problems = load_settings()
    assert "unknown setting future_option" in problems[0] and "unknown setting plugins" in problems[0]
    settings.search.query = "danube"
    save_settings(settings)
    again, problems_again = load_settings()
    assert again.search.query == "danube" and again.convert.output_dir == "/m"
    import tomllib

    raw = tomllib.loads(path.read_text())
    assert raw["future_option"] is True and raw["plugins"] == {"extra": {"name": "x"}}
    assert raw["convert"]["q_bits"] == "four"  # the user's typo stays for them to fix, not replaced by 4
    settings.convert.q_bits = 6  # a value the user sets in the app replaces it
    save_settings(settings)
    assert tomllib.loads(path.read_text())["convert"]["q_bits"] == 6


def test_a_relative_output_dir_is_made_absolute_against_the_start_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    settings.convert.output_dir = "relmodels"
    assert settings.models_dir() == tmp_path / "relmodels"


def test_a_relative_xdg_directory_is_ignored(monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert paths.data_dir().is_absolute() and "relative" not in str(paths.data_dir())
