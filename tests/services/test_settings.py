"""Settings: XDG location, atomic round trip, broken files give defaults and a notice, never an overwrite."""

from __future__ import annotations

from pathlib import Path

from mlxtui import paths
from mlxtui.settings import Settings, default_path, load_settings, save_settings


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
