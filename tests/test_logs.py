"""Logs: readable text, JSON lines on request, no timestamp of our own under journald, secrets never shown."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer, rss
from tests.receivers import SmtpServer, WebhookReceiver
from tests.running import RunningDaemon
from worker.logs import JsonFormatter, TextFormatter, log_file, redact_text, stderr_is_journal

PASSWORD = "Pa55-word-of-the-mailbox"
TOKEN = "tok-4f9a1c0e7b2d"
FEED_PASSWORD = "feed-secret-77"
TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def _record(message: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("newswatch.test", level, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_urls_with_credentials_or_tokens_are_masked_in_any_text() -> None:
    text = redact_text(f"sending to mailto://bob:{PASSWORD}@mail.example and json://h/x?token={TOKEN} done")
    assert PASSWORD not in text and TOKEN not in text
    assert "mailto://bob:***@mail.example" in text and "done" in text
    assert redact_text("no url here") == "no url here"


def test_text_lines_carry_a_timestamp_except_under_journald() -> None:
    plain = TextFormatter().format(_record("polled %d feeds", 3))
    assert plain.split(" ", 2)[2] == "INFO    newswatch.test: polled 3 feeds"
    journal = TextFormatter(journal=True).format(_record("feed gone", level=logging.WARNING))
    assert journal == "<4>WARNING newswatch.test: feed gone"  # journald reads the priority from <4>


def test_text_lines_mask_secrets_even_in_a_traceback() -> None:
    try:
        raise RuntimeError(f"cannot reach https://user:{PASSWORD}@host.example/")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = TextFormatter().format(record)
    assert "RuntimeError" in line and PASSWORD not in line


def test_json_lines_are_one_object_with_extra_fields_and_masked_secrets() -> None:
    record = _record("sent to %s", f"json://h/x?token={TOKEN}", feed_id=7, target=f"mailto://a:{PASSWORD}@m")
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "newswatch.test" and entry["feed_id"] == 7
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert entry["message"] == "sent to json://h/x?token=***" and entry["target"] == "mailto://a:***@m"


def test_json_lines_carry_exceptions_as_a_field() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed" and "ValueError: bad value" in entry["exception"]


def test_journald_is_recognised_by_the_stream_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (tmp_path / "journal").open("w") as journal, (tmp_path / "other").open("w") as other:
        stat = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        assert stderr_is_journal(journal)
        assert not stderr_is_journal(other)  # inherited the variable, but writes elsewhere
        monkeypatch.setenv("JOURNAL_STREAM", "garbage")
        assert not stderr_is_journal(journal)


def test_log_file_only_under_systemds_logs_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOGS_DIRECTORY", raising=False)
    assert log_file("run") is None
    monkeypatch.setenv("LOGS_DIRECTORY", "/var/log/newswatch")
    assert log_file("run") == Path("/var/log/newswatch/run.log")


def _feeds_list(config: Path, stderr: Path, *options: str, env: dict[str, str] | None = None) -> list[str]:
    """Run `feeds list` with stderr into a file; the lines of its start-up that report the config feeds."""
    with stderr.open("w") as sink:
        done = subprocess.run(
            [sys.executable, "-m", "worker", "--config", str(config), *options, "feeds", "list"],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=sink,
            timeout=120,
        )
    assert done.returncode == 0, stderr.read_text()
    return [line for line in stderr.read_text().splitlines() if "config feeds" in line]


def _config(directory: Path, extra: str = "") -> Path:
    """A config with one feed: on a fresh store, start-up logs "config feeds: 1 added, …"."""
    directory.mkdir()
    return write_config(directory, '[[feeds]]\nurl = "http://127.0.0.1:9/feed.xml"\n' + extra)


def test_the_cli_logs_readable_text_by_default(tmp_path: Path) -> None:
    [line] = _feeds_list(_config(tmp_path / "store"), tmp_path / "err")
    assert re.match(TIMESTAMP + r",\d+ INFO    newswatch: config feeds: 1 added", line)


def test_the_configs_log_format_gives_json_lines(tmp_path: Path) -> None:
    [line] = _feeds_list(_config(tmp_path / "store", '[log]\nformat = "json"\n'), tmp_path / "err")
    entry = json.loads(line)
    assert entry["message"].startswith("config feeds: 1 added") and entry["logger"] == "newswatch"


def test_under_journald_lines_have_a_priority_and_no_timestamp(tmp_path: Path) -> None:
    config = _config(tmp_path / "store", '[log]\nformat = "json"\n')
    journal = tmp_path / "journal"
    journal.touch()
    stat = journal.stat()
    env = {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
    lines = _feeds_list(config, journal, "--log-format", "text", env=env)  # the option beats [log] format
    assert lines == ["<6>INFO newswatch: config feeds: 1 added, 0 changed, 0 disabled"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_full_run_never_logs_the_channels_passwords_or_tokens(
    fmt: str, tmp_path: Path, feed_server: FeedServer, smtp_server: SmtpServer, webhook: WebhookReceiver
) -> None:
    published = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    item = {
        "title": "Tokayev opens the Astana International Forum",
        "guid": "forum-1",
        "description": "President Tokayev opened the forum in Astana, Kazakhstan.",
        "pubDate": published,
    }
    path = feed_server.set("/kz.xml", rss("Steppe", [item]))
    feed_url = path.replace("http://", f"http://reader:{FEED_PASSWORD}@")
    (tmp_path / "channels.yml").write_text(
        "version: 1\nurls:\n"
        f"  - mailto://newswatch:{PASSWORD}@127.0.0.1:{smtp_server.port}"
        "?from=nw@example.org&to=alice@example.org:\n      tag: kazakhstan\n"
        f"  - json://127.0.0.1:{webhook.port}/hook?+X-Api-Token={TOKEN}:\n      tag: kazakhstan\n",
        encoding="utf-8",
    )
    body = (
        f'tick = 0.5\n[alerts]\nchannels = "channels.yml"\nretry_base = "1s"\n[[feeds]]\nurl = "{feed_url}"\n'
    )
    config = write_config(tmp_path, body)
    # Each target fails once first, so the failure lines (which quote what the service said) are logged too.
    smtp_server.fail_next(1)
    webhook.fail_next(1, status=401)
    logs = tmp_path / "logs"
    logs.mkdir()
    options = ["--log-level", "debug", "--log-format", fmt]
    with RunningDaemon(config, options=options, env={"LOGS_DIRECTORY": str(logs)}) as daemon:
        [mail] = smtp_server.wait_for(1, timeout=60)
        [request] = webhook.wait_for(1, timeout=60)
        daemon.wait_for_line("failed", count=2)
        assert daemon.stop() == 0, daemon.output
    # The secrets were really in use ...
    assert mail.login == "newswatch" and request.headers["x-api-token"] == TOKEN
    assert len(feed_server.requests("/kz.xml")) >= 1
    # ... and appear nowhere: not on stderr, not in the log file.
    output = daemon.output + (logs / "run.log").read_text(encoding="utf-8")
    for secret in (PASSWORD, TOKEN, FEED_PASSWORD):
        assert secret not in output
    assert "Traceback" not in output
    if fmt == "json":
        entries = [json.loads(line) for line in daemon.lines]
        assert {"time", "level", "logger", "message"} <= set(entries[0])
