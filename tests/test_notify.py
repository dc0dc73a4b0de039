"""sd_notify: the protocol on a socket the test owns, and the real daemon talking to it as systemd expects."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.feedserver import FeedServer, rss
from tests.running import RunningDaemon
from worker.daemon import Daemon, status_line
from worker.ingest.pipeline import PollSummary
from worker.notify import Notifier, socket_address, watchdog_interval
from worker.runtime import open_runtime

WAIT = 60.0

Message = dict[str, str]


class NotifyListener:
    """A datagram socket standing in for systemd's: it keeps every message the daemon sends."""

    def __init__(self, address: str) -> None:
        self.address = address  # as NOTIFY_SOCKET names it
        self.messages: list[Message] = []
        self.daemon: RunningDaemon | None = None  # the sender: its output explains a missing message
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bound = socket_address(address)
        assert bound is not None
        self._sock.bind(bound)
        self._sock.settimeout(0.2)

    def close(self) -> None:
        self._sock.close()

    def wait_for(
        self, keep: Callable[[Message], bool], count: int = 1, timeout: float = WAIT
    ) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(kept := [m for m in self.messages if keep(m)]) < count:
            if time.monotonic() > deadline:
                output = f"; daemon output:\n{self.daemon.output}" if self.daemon is not None else ""
                raise AssertionError(f"expected {count} matching notifications, got: {self.messages}{output}")
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            lines = data.decode().split("\n")
            self.messages.append(dict(line.split("=", 1) for line in lines))
        return kept


@pytest.fixture
def abstract_listener() -> Iterator[NotifyListener]:
    listener = NotifyListener(f"@newswatch-test-{uuid.uuid4().hex}")
    yield listener
    listener.close()


@pytest.fixture
def path_listener() -> Iterator[NotifyListener]:
    # A short directory: a unix socket path must stay under 108 bytes, pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="nw-") as directory:
        listener = NotifyListener(f"{directory}/notify")
        yield listener
        listener.close()


def test_notifications_reach_a_socket_path(path_listener: NotifyListener) -> None:
    notifier = Notifier(path_listener.address)
    notifier.ready("3 feeds,\nno poll yet")
    notifier.watchdog()
    notifier.close()
    ready, ping = path_listener.wait_for(lambda m: True, count=2)
    assert ready == {"READY": "1", "STATUS": "3 feeds, no poll yet"}  # a status stays one line
    assert ping == {"WATCHDOG": "1"}


def test_notifications_reach_an_abstract_socket(abstract_listener: NotifyListener) -> None:
    notifier = Notifier(abstract_listener.address)
    notifier.reloading()
    notifier.stopping()
    reloading, stopping = abstract_listener.wait_for(lambda m: True, count=2)
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    assert stopping == {"STOPPING": "1"}


def test_outside_systemd_nothing_is_sent_and_nothing_fails(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    notifier.ready("ok")
    assert socket_address("relative/path") is None
    with caplog.at_level(logging.WARNING):
        assert not Notifier("relative/path").enabled
    assert "not a socket path" in caplog.text


def test_a_vanished_socket_is_reported_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier(f"@newswatch-nobody-{uuid.uuid4().hex}")
    with caplog.at_level(logging.WARNING, logger="newswatch.notify"):
        notifier.watchdog()
        notifier.watchdog()
    assert len([r for r in caplog.records if "cannot notify systemd" in r.getMessage()]) == 1


def test_watchdog_interval_is_half_of_systemds_timeout_for_this_process_only() -> None:
    import os

    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None


def test_status_line_summarises_feeds_last_poll_and_outbox() -> None:
    assert status_line(1, 0, None) == "1 feed, no poll yet, outbox 0"
    assert (
        status_line(42, 2, PollSummary(feeds=5, new=3, errors=1))
        == "42 feeds, last poll 3 new, 1 errors, outbox 2"
    )


def _recent_items(count: int) -> list[dict[str, str]]:
    published = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    return [
        {"title": f"Council report {i}", "guid": f"r{i}", "description": f"Report {i}.", "pubDate": published}
        for i in range(count)
    ]


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_the_daemon_notifies_ready_watchdog_status_and_stopping(
    tmp_path: Path, feed_server: FeedServer, abstract_listener: NotifyListener
) -> None:
    url = feed_server.set("/news.xml", rss("Outlet", _recent_items(3)))
    config = write_config(tmp_path, f'tick = 0.5\n[[feeds]]\nurl = "{url}"\n')
    env = {"NOTIFY_SOCKET": abstract_listener.address, "WATCHDOG_USEC": "400000"}
    with RunningDaemon(config, env=env) as daemon:
        abstract_listener.daemon = daemon
        [ready] = abstract_listener.wait_for(lambda m: m.get("READY") == "1")
        # READY only once the store is migrated and the config's feeds are in it.
        assert {"alembic_version", "feed", "article"} <= _tables(tmp_path / "newswatch.db")
        assert ready["STATUS"].startswith("1 feed, ")
        abstract_listener.wait_for(lambda m: m.get("WATCHDOG") == "1", count=3)
        abstract_listener.wait_for(lambda m: m.get("STATUS") == "1 feed, last poll 3 new, 0 errors, outbox 0")
        code = daemon.stop()
        abstract_listener.wait_for(lambda m: m.get("STOPPING") == "1")
    assert code == 0, daemon.output
    kinds = [next(iter(m)) for m in abstract_listener.messages]
    assert kinds.index("READY") < kinds.index("WATCHDOG")
    assert "STOPPING" not in kinds[: kinds.index("READY")]


class RecordingNotifier(Notifier):
    """Keeps what would be sent, and the thread it was sent from."""

    def __init__(self) -> None:
        super().__init__(None)
        self.sent: list[tuple[int, tuple[str, ...]]] = []

    @property
    def enabled(self) -> bool:
        return True

    def send(self, *assignments: str) -> None:
        self.sent.append((threading.get_ident(), assignments))

    def count(self, assignment: str) -> int:
        return sum(1 for _, sent in self.sent if assignment in sent)


def test_watchdog_pings_come_from_the_event_loop_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ping sent from any other thread would keep a hung loop alive in systemd's eyes."""
    monkeypatch.setenv("WATCHDOG_USEC", "100000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    runtime = open_runtime(write_config(tmp_path, "tick = 0.5\n"))
    notifier = RecordingNotifier()

    async def scenario() -> int:
        daemon = Daemon(runtime, notifier)
        running = asyncio.create_task(daemon.run())

        async def pinged() -> None:
            while notifier.count("WATCHDOG=1") < 3:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(pinged(), WAIT)
        daemon.request_stop("SIGTERM")
        await running
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    pings = [thread for thread, sent in notifier.sent if sent == ("WATCHDOG=1",)]
    assert len(pings) >= 3 and set(pings) == {loop_thread}
    order = [sent[0] for _, sent in notifier.sent]
    assert order.index("READY=1") < order.index("WATCHDOG=1") < order.index("STOPPING=1")
