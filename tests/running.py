"""`newswatch run` as a subprocess the test talks to: its output read as it comes, signals, a clean stop.

with RunningDaemon(config, env={"NOTIFY_SOCKET": "@x"}) as daemon:
    daemon.wait_for_line("newswatch running")
    daemon.signal(signal.SIGHUP)
    ...
    assert daemon.stop() == 0                     # SIGTERM, then the exit code
daemon.output                                     # everything it printed (stdout and stderr)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tests.conftest import REPO

# How long a test waits for the daemon to print an expected line.
LINE_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class RunningDaemon:
    def __init__(
        self,
        config: Path,
        *,
        options: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        command: Sequence[str] = ("run",),
    ) -> None:
        self.args = [sys.executable, "-m", "worker", "--config", str(config), *options, *command]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> RunningDaemon:
        self._process = subprocess.Popen(
            self.args,
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="daemon-output", daemon=True)
        self._reader.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT)

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "not started"
        return self._process

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, text: str, count: int = 1, timeout: float = LINE_TIMEOUT) -> list[str]:
        """The first `count` lines containing `text`, once printed; AssertionError on timeout or exit."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := [line for line in self._lines if text in line]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._finished():
                    raise AssertionError(
                        f"expected {count} line(s) with {text!r}, got {len(found)}; output:\n"
                        + "".join(self._lines)
                    )
                self._changed.wait(min(remaining, 0.5))
            return found

    def _finished(self) -> bool:
        """Exited, and all it printed has been read."""
        return self.process.poll() is not None and not (self._reader is not None and self._reader.is_alive())

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self) -> int:
        """SIGTERM, then the exit code once the process is gone and its output read."""
        self.signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT)
        return code
