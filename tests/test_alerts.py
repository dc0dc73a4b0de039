"""Alerts end to end on real transports: feed server → poll → outbox → apprise → local receivers."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.feedserver import FeedServer, rss
from tests.receivers import SmtpServer, WebhookReceiver
from tests.test_cli import cli

KZ_ITEM = {
    "title": "Tokayev opens the Astana International Forum",
    "link": "https://steppe.example/forum",
    "guid": "forum-1",
    "description": "President Kassym-Jomart Tokayev opened the forum in Astana, Kazakhstan, on Thursday.",
}


def _recent(item: dict[str, str], minutes: int = 5) -> dict[str, str]:
    return {**item, "pubDate": format_datetime(datetime.now(UTC) - timedelta(minutes=minutes), usegmt=True)}


def _setup(tmp_path: Path, channels: str, policy: str = "", feeds: list[str] | None = None) -> str:
    (tmp_path / "channels.yml").write_text(channels, encoding="utf-8")
    body = "".join(f'[[feeds]]\nurl = "{url}"\n' for url in feeds or [])
    extra = '[alerts]\nchannels = "channels.yml"\nretry_base = "1s"\ntimezone = "UTC"\n' + policy
    return str(write_config(tmp_path, extra + body))


def _json_target(hook: WebhookReceiver, tags: str = "kazakhstan, chat") -> str:
    return f"version: 1\nurls:\n  - json://127.0.0.1:{hook.port}/hook:\n      tag: {tags}\n"


def _deliveries(
    capsys: pytest.CaptureFixture[str], config: str, status: str | None = None
) -> list[dict[str, object]]:
    args = ["--config", config, "alerts", "list", "--format", "json"] + (
        ["--status", status] if status else []
    )
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def _make_due(tmp_path: Path) -> None:
    """Move every waiting delivery to now: the clock has 'passed' the quiet hours / digest slot."""
    with sqlite3.connect(tmp_path / "newswatch.db") as conn:
        conn.execute(
            "UPDATE delivery SET next_attempt = '2000-01-01 00:00:00' WHERE status IN ('pending', 'queued')"
        )


def test_a_tagged_article_alerts_once_and_duplicates_and_story_followups_do_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    a = feed_server.set("/a.xml", rss("Outlet A", [_recent(KZ_ITEM)]))
    config = _setup(tmp_path, _json_target(webhook), feeds=[a])
    code, out, err = cli(capsys, "--config", config, "poll")
    assert code == 0 and "alerts: 1 sent" in out, out + err
    [request] = webhook.accepted
    payload = request.json()
    assert "Tokayev opens the Astana International Forum" in payload["title"] + payload["message"]
    assert "https://steppe.example/forum" in payload["message"]
    [row] = _deliveries(capsys, config)
    assert row["status"] == "sent" and row["attempts"] == 1 and row["kind"] == "instant"
    assert row["sent_at"] and "127.0.0.1" in str(row["target"])

    # The same article from another feed (tracking parameters on the link): stored, never alerted.
    copy = dict(_recent(KZ_ITEM), guid="other", link=KZ_ITEM["link"] + "?utm_source=x")
    # Another outlet's report of the same story: one alert per story, it waits for the digest.
    report = _recent(
        {
            "title": "Kazakh President Tokayev opens Astana International Forum",
            "link": "https://other.example/aif",
            "guid": "aif",
            "description": "Kazakhstan's President Kassym-Jomart Tokayev on Thursday opened the Astana "
            "International Forum, which gathers delegations from 70 countries in Astana.",
        }
    )
    b = feed_server.set("/b.xml", rss("Outlet B", [copy, report]))
    config = _setup(tmp_path, _json_target(webhook), feeds=[a, b])
    code, out, err = cli(capsys, "--config", config, "poll")
    assert code == 0, err
    assert len(webhook.accepted) == 1
    kinds = sorted((r["kind"], r["status"]) for r in _deliveries(capsys, config))
    assert ("instant", "sent") in kinds
    assert ("followup", "queued") in kinds or len(
        kinds
    ) == 1  # the report joined the story, or is a duplicate


def test_targets_receive_only_their_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    a = feed_server.set("/a.xml", rss("Outlet A", [_recent(KZ_ITEM)]))
    config = _setup(tmp_path, _json_target(webhook, tags="ots"), feeds=[a])
    assert cli(capsys, "--config", config, "poll")[0] == 0
    assert webhook.accepted == [] and _deliveries(capsys, config) == []


def test_a_failing_receiver_is_retried_and_delivered_exactly_once_after_recovery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    a = feed_server.set("/a.xml", rss("Outlet A", [_recent(KZ_ITEM)]))
    config = _setup(tmp_path, _json_target(webhook), feeds=[a])
    webhook.fail_next(1, status=500)
    assert cli(capsys, "--config", config, "poll")[0] == 0
    [row] = _deliveries(capsys, config)
    assert row["status"] == "pending" and row["attempts"] == 1 and "500" in str(row["last_error"])
    _make_due(tmp_path)
    assert cli(capsys, "--config", config, "poll")[0] == 0
    [row] = _deliveries(capsys, config)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert len(webhook.accepted) == 1


def test_smtp_down_at_first_then_delivered_with_both_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer
) -> None:
    a = feed_server.set("/a.xml", rss("Steppe & Sons", [_recent(KZ_ITEM)]))
    with SmtpServer() as smtp:
        port = smtp.port
        smtp.stop()
        channels = (
            "version: 1\nurls:\n"
            f"  - mailto://newswatch:pw@127.0.0.1:{port}?from=newswatch@example.org&to=desk@example.org"
            "&mode=insecure:\n      tag: all, email\n"
        )
        config = _setup(tmp_path, channels, feeds=[a])
        assert cli(capsys, "--config", config, "poll")[0] == 0
        [row] = _deliveries(capsys, config)
        assert row["status"] == "pending" and row["last_error"]
        assert "pw@" not in str(row["last_error"]) and ":pw" not in str(row["target"])
        smtp.start()
        _make_due(tmp_path)
        assert cli(capsys, "--config", config, "poll")[0] == 0
        [mail] = smtp.wait_for(1)
    message = mail.message
    assert "desk@example.org" in mail.recipients
    assert "kazakhstan" in message["Subject"] and "Tokayev" in message["Subject"]
    assert message["List-Id"]
    types = {part.get_content_type() for part in message.walk()}
    assert {"text/plain", "text/html"} <= types
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    assert "Steppe &amp; Sons" in html and "Steppe & Sons" not in html


def test_quiet_hours_hold_then_deliver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)).strftime("%H:%M"), (now + timedelta(hours=1)).strftime("%H:%M")
    a = feed_server.set("/a.xml", rss("Outlet A", [_recent(KZ_ITEM)]))
    policy = f'[alerts.policy.default]\nquiet_hours = "{start}-{end}"\n'
    config = _setup(tmp_path, _json_target(webhook), policy, feeds=[a])
    assert cli(capsys, "--config", config, "poll")[0] == 0
    [row] = _deliveries(capsys, config)
    assert row["status"] == "pending" and webhook.accepted == []
    held_until = datetime.fromisoformat(str(row["next_attempt"]))
    assert timedelta(minutes=58) < held_until - now < timedelta(minutes=62)
    _make_due(tmp_path)  # the quiet hours are over
    assert cli(capsys, "--config", config, "poll")[0] == 0
    assert len(webhook.accepted) == 1


def test_rate_limit_overflow_arrives_as_one_digest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    topics = ["grain exports", "a new rail line", "the tenge", "uranium output", "a solar plant"]
    items = [
        _recent(
            {
                "title": f"Kazakhstan reports record {topic}",
                "link": f"https://steppe.example/{n}",
                "guid": f"n{n}",
                "description": f"Kazakhstan's government in Astana said {topic} hit a record in {2020 + n}.",
            }
        )
        for n, topic in enumerate(topics)
    ]
    a = feed_server.set("/a.xml", rss("Outlet A", items))
    policy = "[alerts.policy.default]\nrate_limit = 2\n"
    config = _setup(tmp_path, _json_target(webhook), policy, feeds=[a])
    assert cli(capsys, "--config", config, "poll")[0] == 0
    assert len(webhook.accepted) == 2
    queued = _deliveries(capsys, config, "queued")
    assert len(queued) == 3 and {r["kind"] for r in queued} == {"overflow"}
    _make_due(tmp_path)  # a minute later
    with sqlite3.connect(tmp_path / "newswatch.db") as conn:  # the rate window has passed too
        conn.execute("UPDATE delivery SET sent_at = '2000-01-01 00:00:00' WHERE status = 'sent'")
    assert cli(capsys, "--config", config, "poll")[0] == 0
    assert len(webhook.accepted) == 3
    digest = webhook.accepted[-1].json()
    text = digest["title"] + digest["message"]
    assert sum(f"record {topic}" in text for topic in topics) == 3
    assert {r["status"] for r in _deliveries(capsys, config, "digested")} == {"digested"}


def test_digest_mode_sends_one_roundup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    a = feed_server.set("/a.xml", rss("Outlet A", [_recent(KZ_ITEM)]))
    policy = '[alerts.policy.chat]\nmode = "digest"\ndigest_at = "08:00"\n'
    config = _setup(tmp_path, _json_target(webhook), policy, feeds=[a])
    assert cli(capsys, "--config", config, "poll")[0] == 0
    assert webhook.accepted == []
    [row] = _deliveries(capsys, config)
    assert (row["kind"], row["status"]) == ("digest", "queued")
    assert datetime.fromisoformat(str(row["next_attempt"])).strftime("%H:%M") == "08:00"
    _make_due(tmp_path)
    assert cli(capsys, "--config", config, "poll")[0] == 0
    [request] = webhook.accepted
    assert "Tokayev" in request.json()["message"]


def test_alerts_test_reports_each_target_truthfully(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], webhook: WebhookReceiver
) -> None:
    channels = (
        "version: 1\nurls:\n"
        f"  - json://127.0.0.1:{webhook.port}/ok:\n      tag: all, good\n"
        "  - json://127.0.0.1:9/nothing-listens:\n      tag: ots, bad\n"
    )
    config = _setup(tmp_path, channels)
    code, out, err = cli(capsys, "--config", config, "alerts", "test")
    assert code == 1
    assert out.count("ok: ") == 1 and err.count("error: ") == 1
    code, out, err = cli(capsys, "--config", config, "alerts", "test", "--tag", "kazakhstan")
    assert code == 0 and out.count("ok: ") == 1, err
    assert len(webhook.accepted) == 2


def test_alerts_retry_requeues_failed_deliveries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], feed_server: FeedServer, webhook: WebhookReceiver
) -> None:
    a = feed_server.set("/a.xml", rss("Outlet A", [_recent(KZ_ITEM)]))
    config = _setup(tmp_path, _json_target(webhook), feeds=[a])
    webhook.set_status(500)
    text = (
        Path(config)
        .read_text(encoding="utf-8")
        .replace('retry_base = "1s"', 'retry_base = "1s"\nmax_attempts = 1')
    )
    Path(config).write_text(text, encoding="utf-8")
    assert cli(capsys, "--config", config, "poll")[0] == 0
    [row] = _deliveries(capsys, config, "failed")
    assert row["attempts"] == 1
    webhook.set_status(200)
    code, out, _ = cli(capsys, "--config", config, "alerts", "retry", "--all-failed")
    assert code == 0 and "1 deliveries queued again" in out
    assert cli(capsys, "--config", config, "poll")[0] == 0
    assert _deliveries(capsys, config, "sent") and len(webhook.accepted) == 1
    code, _, err = cli(capsys, "--config", config, "alerts", "retry")
    assert code == 1 and "give one delivery id or --all-failed" in err
