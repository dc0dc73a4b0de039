"""Settings: defaults, the README's minimal file, env overrides, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.config import load_settings, parse_duration
from worker.errors import ConfigError

MINIMAL = """
[database]
url = "sqlite:////var/lib/newswatch/newswatch.db"
[http]
allow_private_networks = false
[[feeds]]
url = "https://example.org/rss.xml"   # optional per feed: interval, tags
"""


def test_minimal_config_from_readme_is_valid_and_defaults_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "newswatch.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.database_url == "sqlite:////var/lib/newswatch/newswatch.db"
    assert [f.url for f in settings.feeds] == ["https://example.org/rss.xml"]
    assert settings.poll_interval == 1800
    assert settings.http.max_body_bytes == 15 * 1024 * 1024
    assert settings.http.max_redirects == 5
    assert settings.http.per_host_limit == 2
    assert settings.alerts.max_age == 24 * 3600


def test_shipped_config_is_valid() -> None:
    settings = load_settings(Path(__file__).resolve().parents[1] / "config" / "newswatch.toml", env={})
    assert len(settings.feeds) >= 10
    assert all(f.url.startswith("https://") for f in settings.feeds)
    assert settings.tags_file is not None and settings.tags_file.is_file()
    assert settings.seeds_dir is not None and settings.seeds_dir.is_dir()


def test_default_database_is_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")
    settings = load_settings(path, env={})
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'newswatch.db'}"


def test_env_overrides_single_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    env = {
        "NEWSWATCH_DATABASE_URL": "postgresql+psycopg://u@h/db",
        "NEWSWATCH_POLL_INTERVAL": "15m",
        "NEWSWATCH_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
    }
    settings = load_settings(path, env=env)
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.poll_interval == 900
    assert settings.http.allow_private_networks is True


def test_every_mistake_is_reported_with_file_key_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
colour = "blue"
[poll]
interval = "soon"
concurency = 3
[http]
allow_private_networks = "maybe"
max_redirects = 99
[[feeds]]
url = "ftp://example.org/feed"
[[feeds]]
url = "https://example.org/a"
tags = "kazakhstan"
[[feeds]]
title = "no url"
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"NEWSWATCH_POLL_JITTER": "lots"})
    problems = caught.value.problems
    text = "\n".join(problems)
    assert all("\n" not in p for p in problems)
    assert f"{path}: colour: unknown key" in text
    assert f"{path}: poll.interval: expected a duration" in text
    assert f"{path}: poll.concurency: unknown key (known keys in [poll]: " in text
    assert f"{path}: http.allow_private_networks: expected true or false, got 'maybe'" in text
    assert f"{path}: http.max_redirects: expected a whole number from 0 to 20, got 99" in text
    assert f"{path}: feeds[0].url: expected an http(s) URL, got 'ftp://example.org/feed'" in text
    assert f"{path}: feeds[1].tags: expected a list of tag names" in text
    assert f"{path}: feeds[2].url: missing" in text
    assert "environment NEWSWATCH_POLL_JITTER: expected a number" in text
    assert len(problems) == 9


def test_unreadable_and_broken_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[poll\ninterval = 3", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML: .*line 1"):
        load_settings(broken, env={})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90", 90.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), (1.5, 1.5)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "-5", "5w", True, None])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)
