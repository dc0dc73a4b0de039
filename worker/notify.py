"""sd_notify without a dependency: tell systemd (Type=notify) that we are ready, alive, reloading, stopping.

The protocol is one datagram of newline-separated KEY=VALUE lines sent to the unix socket named by
$NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Outside systemd the variable is unset and
every call does nothing. A failed send is logged once and otherwise ignored: systemd going away must not
stop the work.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"

log = logging.getLogger("newswatch.notify")


def socket_address(value: str) -> str | None:
    """The address to send to: an absolute path, or "@name" as the abstract name "\\0name"; else None."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of systemd's WatchdogSec), or None when no watchdog is armed.

    WATCHDOG_PID, when set, names the process the watchdog watches: another process (a child that inherited
    the environment) must not ping for it.
    """
    env = os.environ if env is None else env
    try:
        usec = int(env.get(WATCHDOG_USEC_ENV, ""))
    except ValueError:
        return None
    pid = env.get(WATCHDOG_PID_ENV)
    if usec <= 0 or (pid is not None and pid != str(os.getpid())):
        return None
    return usec / 2 / 1_000_000


class Notifier:
    """Sends notifications to systemd; does nothing when not started by it."""

    def __init__(self, address: str | None) -> None:
        self.address = socket_address(address) if address else None
        if address and self.address is None:
            log.warning(
                "%s=%r is not a socket path or @name: systemd is not notified", NOTIFY_SOCKET_ENV, address
            )
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(env.get(NOTIFY_SOCKET_ENV))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> None:
        """One datagram of KEY=VALUE lines (a value must be one line)."""
        if self.address is None:
            return
        data = "\n".join(assignments).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(data, self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd (%s): %s", NOTIFY_SOCKET_ENV, exc.strerror or exc)
                self._failed = True

    def ready(self, status: str) -> None:
        self.send("READY=1", _status(status))

    def status(self, status: str) -> None:
        self.send(_status(status))

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd tell this reload from an earlier one; READY=1 ends it.
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.split())
