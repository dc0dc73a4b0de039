"""SIGHUP on a running daemon: new feeds, tag rules and channels take effect; a broken config is refused."""

from __future__ import annotations

import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.conftest import REPO
from tests.feedserver import FeedServer, rss
from tests.receivers import WebhookReceiver
from tests.running import RunningDaemon

RULES = """
[languages.en]
suffixes = []

[tags.alpha]
threshold = 2.0
[tags.alpha.terms.town]
weight = 2.0
en = ["Alphaville"]
"""
CASPIAN_RULES = """
[tags.caspian]
threshold = 2.0
[tags.caspian.terms.sea]
weight = 2.0
en = ["Caspian"]
"""


def _item(guid: str, title: str) -> dict[str, str]:
    published = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    return {"title": title, "guid": guid, "description": f"{title}. More to follow.", "pubDate": published}


def _config_text(directory: Path, feeds: list[str], extra: str = "", opml: bool = False) -> str:
    """Like conftest.write_config, with its own tag rules and channels next to it; `extra` goes in [poll]."""
    return (
        f'state_dir = "{directory}"\n'
        + ('opml = "feeds.opml"\n' if opml else "")
        + f'[database]\nurl = "sqlite:///{directory / "newswatch.db"}"\n'
        "[http]\nallow_private_networks = true\ntimeout = 5\n"
        '[tagging]\nrules = "tags.toml"\n'
        f'[seeds]\ndir = "{REPO / "seeds"}"\n'
        '[alerts]\nchannels = "channels.yml"\nretry_base = "1s"\n'
        f"[poll]\njitter = 0\ntick = 0.5\n{extra}" + "".join(f'[[feeds]]\nurl = "{url}"\n' for url in feeds)
    )


def _write_config(directory: Path, feeds: list[str], extra: str = "", opml: bool = False) -> Path:
    path = directory / "newswatch.toml"
    path.write_text(_config_text(directory, feeds, extra, opml), encoding="utf-8")
    return path


def _write_opml(directory: Path, url: str) -> None:
    outline = f'<outline type="rss" text="From OPML" xmlUrl="{url}"/>'
    text = f'<?xml version="1.0"?>\n<opml version="2.0"><head/><body>{outline}</body></opml>\n'
    (directory / "feeds.opml").write_text(text, encoding="utf-8")


def _channels(directory: Path, *hooks: tuple[WebhookReceiver, str]) -> None:
    urls = "".join(f"  - json://127.0.0.1:{hook.port}/hook:\n      tag: {tag}\n" for hook, tag in hooks)
    (directory / "channels.yml").write_text(f"version: 1\nurls:\n{urls}", encoding="utf-8")


def _tags_of(db: Path, guid: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT t.tag FROM article_tag t JOIN article a ON a.id = t.article_id WHERE a.guid = ?", (guid,)
        ).fetchall()
    return {row[0] for row in rows}


def _poll_again(db: Path, url: str) -> None:
    """Make a feed due now, as if its interval had passed."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE feed SET next_check = '2000-01-01 00:00:00' WHERE url = ?", (url,))


def test_sighup_reloads_feeds_tags_and_channels_and_refuses_a_broken_config(
    tmp_path: Path, feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    db = tmp_path / "newswatch.db"
    first = feed_server.set("/alpha.xml", rss("Alpha", [_item("a1", "Alphaville council meets")]))
    later = feed_server.set("/caspian.xml", rss("Caspian", [_item("c1", "Caspian shipping grows")]))
    listed = feed_server.set("/listed.xml", rss("Listed", [_item("o1", "Caspian ports listed")]))
    refused = feed_server.set("/refused.xml", rss("Refused", [_item("r1", "Caspian news never read")]))
    (tmp_path / "tags.toml").write_text(RULES, encoding="utf-8")
    _channels(tmp_path, (webhook, "alpha"))
    config = _write_config(tmp_path, [first])

    with WebhookReceiver() as caspian_hook, RunningDaemon(config) as daemon:
        webhook.wait_for(1, timeout=60)
        assert _tags_of(db, "a1") == {"alpha"}

        # A new feed, a new tag and a new channel for it, and one setting that needs a restart.
        (tmp_path / "tags.toml").write_text(RULES + CASPIAN_RULES, encoding="utf-8")
        _channels(tmp_path, (webhook, "alpha"), (caspian_hook, "caspian"))
        _write_opml(tmp_path, listed)
        _write_config(tmp_path, [first, later], extra="concurrency = 4\n", opml=True)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_line(
            "reloaded: 3 config feeds (2 added, 0 changed, 0 disabled), 2 tags, 2 alert targets"
        )
        [warning] = daemon.wait_for_line("apply only after a restart")
        assert warning.rstrip().endswith(": poll_concurrency")
        bodies = " ".join(alert.body.decode() for alert in caspian_hook.wait_for(2, timeout=60))
        assert "Caspian shipping grows" in bodies and "Caspian ports listed" in bodies
        assert _tags_of(db, "c1") == _tags_of(db, "o1") == {"caspian"}

        # Broken files, one at a time: each is refused with one line, and nothing of it is applied.
        good_tags = (tmp_path / "tags.toml").read_text(encoding="utf-8")
        good_channels = (tmp_path / "channels.yml").read_text(encoding="utf-8")
        broken = [
            ("newswatch.toml", _config_text(tmp_path, [first, later, refused], "bogus = 1\n", opml=True)),
            ("tags.toml", good_tags.replace("weight = 2.0", "weight = -2")),
            ("channels.yml", good_channels + "  - nosuchservice://x/y:\n      tag: caspian\n"),
        ]
        for count, (name, text) in enumerate(broken, start=1):
            good = (tmp_path / name).read_text(encoding="utf-8")
            (tmp_path / name).write_text(text, encoding="utf-8")
            daemon.signal(signal.SIGHUP)
            [*_, line] = daemon.wait_for_line(
                "reload refused, the running config stays in force", count=count
            )
            assert name in line
            (tmp_path / name).write_bytes(good.encode())
        # The old config is still in force: the feeds, tags and channels of before the broken files.
        feed_server.set("/caspian.xml", rss("Caspian", [_item("c2", "Caspian ferry resumes")]))
        _poll_again(db, later)
        caspian_hook.wait_for(3, timeout=60)
        assert _tags_of(db, "c2") == {"caspian"}
        assert feed_server.hits("/refused.xml") == 0
        assert daemon.stop() == 0, daemon.output
    assert "Traceback" not in daemon.output
    assert len([line for line in daemon.lines if "reload refused" in line]) == 3
