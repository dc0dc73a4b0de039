"""The command line as a user meets it: real entry point, real store, clear errors, no tracebacks."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer, rss
from worker.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_entry_points_run(tmp_path: Path) -> None:
    for command in ([sys.executable, "-m", "worker", "--version"], ["newswatch", "--version"]):
        try:
            done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        except FileNotFoundError:
            pytest.skip("the newswatch script is not on PATH (install with pip install -e .)")
        assert done.returncode == 0 and done.stdout.startswith("newswatch "), done.stderr


def test_check_accepts_a_good_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, err = cli(capsys, "--config", str(config), "check")
    assert code == 0, err
    assert "ok: config" in out and "ok: database" in out and "ok: tag rules" in out


def test_check_lists_every_problem_once_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[database]\nurl = "mysql://nobody@nowhere/x"\n[poll]\ninterval = "often"\n'
        '[[feeds]]\nurl = "not a url"\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(bad), "check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 3, done.stderr
    assert all(line.startswith(f"error: {bad}: ") for line in lines)
    assert "database.url" in done.stderr and "poll.interval" in done.stderr and "feeds[0].url" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_check_reports_an_unreachable_database_and_a_missing_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:9/none")
    done = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), "check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "cannot open database" in done.stderr
    assert "Traceback" not in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(tmp_path / "nope.toml"), "feeds", "list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.toml'}: config file not found"


def test_feeds_add_list_poll_show_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    config = str(write_config(tmp_path))
    url = feed_server.set(
        "/kz.xml",
        rss(
            "Steppe News",
            [
                {
                    "title": "Tokayev opens the Astana forum",
                    "guid": "a1",
                    "link": "https://steppe.example/a1",
                    "description": "President Kassym-Jomart Tokayev opened the forum in Astana, Kazakhstan.",
                },
            ],
        ),
    )
    code, out, err = cli(capsys, "--config", config, "feeds", "add", url, "--interval", "15m")
    assert code == 0 and "added feed" in out, err
    code, out, err = cli(capsys, "--config", config, "feeds", "add", url)
    assert code == 1 and err.strip() == f"error: feed {url} is already subscribed"
    code, out, err = cli(capsys, "--config", config, "feeds", "add", "gopher://x/y")
    assert code == 1 and "expected an http(s) URL" in err

    code, out, err = cli(capsys, "--config", config, "poll")
    assert code == 0 and "1 new articles" in out, out + err

    code, out, _ = cli(capsys, "--config", config, "feeds", "list", "--format", "json")
    [row] = json.loads(out)
    assert row["url"] == url and row["status"] == "ok" and row["articles"] == 1 and row["http_status"] == 200
    assert row["interval"] == 900 and row["title"] == "Steppe News"
    code, out, _ = cli(capsys, "--config", config, "feeds", "list")
    assert code == 0 and "Steppe" in out and "1 feeds" in out

    with sqlite3.connect(tmp_path / "newswatch.db") as conn:
        article_id = conn.execute("SELECT id FROM article WHERE guid = 'a1'").fetchone()[0]
    code, out, err = cli(capsys, "--config", config, "show", str(article_id), "--format", "json", "--why")
    assert code == 0, err
    article = json.loads(out)
    assert article["title"] == "Tokayev opens the Astana forum" and article["source"] == "feed"
    assert "kazakhstan" in {t["name"] for t in article["tags"]}
    assert article["why"]["story_id"] == article["story_id"]
    code, out, err = cli(capsys, "--config", config, "show", "999")
    assert code == 1 and err.strip() == "error: no article 999"

    code, out, err = cli(capsys, "--config", config, "feeds", "remove", url)
    assert code == 0 and "removed feed" in out, err
    code, out, _ = cli(capsys, "--config", config, "feeds", "list", "--format", "json")
    assert json.loads(out) == []


def test_opml_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    opml = tmp_path / "in.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body><outline text="Region">'
        '<outline type="rss" text="A" xmlUrl="https://a.example/rss"/>'
        '<outline type="rss" text="B" xmlUrl="https://b.example/atom"/>'
        '<outline type="rss" text="bad" xmlUrl="javascript:alert(1)"/></outline></body></opml>',
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "--config", config, "feeds", "import", str(opml))
    assert code == 0 and "imported 2 feeds (0 already subscribed, 1 invalid)" in out, out + err
    code, out, _ = cli(capsys, "--config", config, "feeds", "import", str(opml))
    assert "imported 0 feeds (2 already subscribed, 1 invalid)" in out
    code, out, _ = cli(capsys, "--config", config, "feeds", "export")
    assert code == 0 and 'xmlUrl="https://a.example/rss"' in out and 'xmlUrl="https://b.example/atom"' in out
    broken = tmp_path / "broken.opml"
    broken.write_text("<opml><body><outline", encoding="utf-8")
    code, _, err = cli(capsys, "--config", config, "feeds", "import", str(broken))
    assert code == 1 and err.startswith(f"error: {broken}: not valid OPML/XML")


def test_config_feeds_sync_add_change_disable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(
        tmp_path, '[[feeds]]\nurl = "https://a.example/rss"\n[[feeds]]\nurl = "https://b.example/rss"\n'
    )
    code, out, _ = cli(capsys, "--config", str(config), "feeds", "list", "--format", "json")
    assert {r["url"]: r["status"] for r in json.loads(out)} == {
        "https://a.example/rss": "pending",
        "https://b.example/rss": "pending",
    }
    text = (
        config.read_text(encoding="utf-8")
        .replace('[[feeds]]\nurl = "https://b.example/rss"\n', "")
        .replace(
            'url = "https://a.example/rss"', 'url = "https://a.example/rss"\ninterval = "2h"\ntags = ["ots"]'
        )
    )
    config.write_text(text, encoding="utf-8")
    code, out, _ = cli(capsys, "--config", str(config), "feeds", "list", "--format", "json")
    rows = {r["url"]: r for r in json.loads(out)}
    assert rows["https://b.example/rss"]["status"] == "disabled"
    assert rows["https://b.example/rss"]["last_error"] == "removed from the config file"
    assert rows["https://a.example/rss"]["interval"] == 7200 and rows["https://a.example/rss"]["tags"] == [
        "ots"
    ]
    code, _, err = cli(capsys, "--config", str(config), "feeds", "remove", "https://a.example/rss")
    assert code == 1 and "declared in the config file" in err


def test_seeds_are_imported_once_and_never_alert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    code, out, _ = cli(capsys, "--config", config, "seeds", "import")
    assert code == 0 and "seeds: 0 new" in out  # the first start already imported them
    code, out, err = cli(capsys, "--config", config, "show", "1", "--format", "json")
    seed = json.loads(out)
    assert seed["source"] == "seed" and seed["published"].startswith("2025-05-21")
    assert seed["alertable"] is False
    assert "Varkert" in seed["text"]  # the Cyrillic "а" folded into Latin for analysis
    assert {t["name"] for t in seed["tags"]} >= {"kazakhstan", "ots"}
    bad = tmp_path / "bad-seed.txt"
    bad.write_text("no date here\nbody", encoding="utf-8")
    code, _, err = cli(capsys, "--config", config, "seeds", "import", str(bad))
    assert code == 1 and "a seed starts with `date YYYY-MM-DD`" in err


def test_tags_rebuild_retags_the_store_and_keeps_feed_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    url = feed_server.set(
        "/plain.xml",
        rss(
            "Plain", [{"title": "Weather report", "guid": "w1", "description": "Rain in the hills tomorrow."}]
        ),
    )
    config = str(write_config(tmp_path, f'[[feeds]]\nurl = "{url}"\ntags = ["regional"]\n'))
    assert cli(capsys, "--config", config, "poll")[0] == 0
    db = tmp_path / "newswatch.db"
    with sqlite3.connect(db) as conn:
        before = sorted(conn.execute("SELECT article_id, tag FROM article_tag").fetchall())
        conn.execute("DELETE FROM article_tag")
    code, out, err = cli(capsys, "--config", config, "tags", "rebuild")
    assert code == 0 and "re-tagged 2 articles" in out, err
    with sqlite3.connect(db) as conn:
        after = sorted(conn.execute("SELECT article_id, tag FROM article_tag").fetchall())
    assert after == before
    assert ("regional" in {tag for _, tag in after}) and ("kazakhstan" in {tag for _, tag in after})


def test_poll_concurrency_bounds_the_fetches_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    urls = [feed_server.behave(f"/slow{n}.xml", "slow", delay=1.0, body=rss(f"S{n}", [])) for n in range(20)]
    feeds = "".join(f'[[feeds]]\nurl = "{url}"\n' for url in urls)
    # write_config's body continues its [poll] table.
    body = "concurrency = 4\n" + feeds
    config = write_config(tmp_path, body, http="timeout = 10\nper_host_limit = 100")
    code, _out, err = cli(capsys, "--config", str(config), "poll")
    assert code == 0, err
    assert feed_server.max_concurrent == 4
