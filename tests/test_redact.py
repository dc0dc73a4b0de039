"""Invariant 6: credentials in URLs never reach logs or screens unmasked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer
from worker.redact import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pa55@host/feed.xml", "https://user:***@host/feed.xml"),
        ("https://tok123@host/x", "https://***@host/x"),
        ("https://host/f?token=abc&x=1", "https://host/f?token=***&x=1"),
        ("https://host/f?api_key=abc&apikey=d&Secret=e", "https://host/f?api_key=***&apikey=***&Secret=***"),
        ("https://host/plain?page=2", "https://host/plain?page=2"),
        ("json://host/x?+Authorization=Bearer+abc&-apikey=k", "json://host/x?+Authorization=***&-apikey=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_feed_password_is_never_printed_or_logged(tmp_path: Path, feed_server: FeedServer) -> None:
    config = str(write_config(tmp_path))
    secret_url = feed_server.url("/server-error").replace("http://", "http://reader:s3cr3t-pw@")
    runs = [
        ["feeds", "add", secret_url],
        ["--log-level", "debug", "poll"],
        ["feeds", "list"],
        ["feeds", "list", "--format", "json"],
        ["feeds", "add", secret_url],
        ["feeds", "remove", "http://x:s3cr3t-pw@nowhere.example/"],
    ]
    for args in runs:
        done = subprocess.run(
            [sys.executable, "-m", "worker", "--config", config, *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "s3cr3t-pw" not in done.stdout + done.stderr, args
    assert feed_server.hits("/server-error") == 1  # the poll really ran


def test_urls_without_secrets_are_left_exactly_as_they_are() -> None:
    # urlsplit/urlunsplit would collapse the empty host of an absolute SQLite path.
    for url in ("sqlite:////var/lib/newswatch/newswatch.db", "https://example.org/rss.xml?a=1&b=2"):
        assert redact_url(url) == url
