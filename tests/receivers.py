"""Local receivers for alert tests: an SMTP server and a webhook server, both on 127.0.0.1, both able to fail.

    with SmtpServer() as smtp:                        # or the `smtp_server` fixture
        url = f"mailto://user:pw@127.0.0.1:{smtp.port}?from=nw@example.org&to=alice@example.org"
        ...                                           # send through apprise
        mail = smtp.wait_for(1)[0]                    # ReceivedMail: sender, recipients, EmailMessage, login

    with WebhookReceiver() as hook:                   # or the `webhook` fixture
        hook.fail_next(2, status=503)                 # the next two requests get 503
        ...                                           # json://127.0.0.1:{hook.port}/path, mmost://…, ntfy://…
        request = hook.wait_for(1)[0]                 # the first request answered 2xx

SmtpServer keeps its port across `stop()`/`start()`, so a test can have the mail server down first and up
later with the same URL. It accepts any AUTH PLAIN/LOGIN credentials without TLS (apprise logs in whenever the
URL has a user and a password) and records the login used.

WebhookReceiver records every request, failed ones included (with the status it answered). Faults, checked
in this order: `fail_next(n)` answers the next n requests with an error; `fail_for(seconds)` answers every
request with an error until the time is up; `set_status(code)` sets the answer of all other requests (200 at
first). `delay(seconds)` holds every answer that long (0 ends it).
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.feedserver import LoopbackServer

HOST = "127.0.0.1"
# How long `wait_for` waits by default for the expected deliveries.
WAIT_TIMEOUT = 5.0
ACCEPTED_REPLY = "250 Message accepted for delivery"
TEMPORARY_FAILURE_REPLY = "451 4.3.0 Temporary failure, try again later"
OK_STATUS = 200
ERROR_STATUS = 500

_T = TypeVar("_T")


# aiosmtpd logs every connection at INFO from its own thread, sometimes after pytest closed the capture
# streams ("--- Logging error ---"): only its warnings are worth seeing.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def _free_port() -> int:
    """A port nobody listens on right now (the SMTP controller cannot bind port 0 and report it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class _Inbox(Generic[_T]):
    """Received items and a condition to wait for them, shared by the server thread and the test."""

    def __init__(self) -> None:
        self._items: list[_T] = []
        self._changed = threading.Condition()

    def add(self, item: _T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[_T]:
        with self._changed:
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_for(self, count: int, timeout: float, keep: Callable[[_T], bool], what: str) -> list[_T]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(kept := [item for item in self._items if keep(item)]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} {what} within {timeout} s, got {len(kept)}")
                self._changed.wait(remaining)
            return kept


# --------------------------------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    sender: str
    recipients: tuple[str, ...]  # the envelope recipients (RCPT TO), not the To: header
    message: EmailMessage
    login: str | None  # the AUTH user name, None when the client did not log in


class _SmtpHandler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self._server._deliver(session, envelope)


def _accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    return AuthResult(success=True, auth_data=auth_data)


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps what it receives; use it as a context manager."""

    def __init__(self, *, auth: bool = True) -> None:
        self.port = _free_port()
        self._auth = auth
        self._controller: Controller | None = None
        self._inbox: _Inbox[ReceivedMail] = _Inbox()
        self._lock = threading.Lock()
        self._replies: list[str] = []  # replies for the next DATA commands instead of accepting them

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Listen (again) on `port`."""
        if self._controller is not None:
            return
        options: dict[str, Any] = (
            {"authenticator": _accept_any_login, "auth_require_tls": False} if self._auth else {}
        )
        controller = Controller(_SmtpHandler(self), hostname=HOST, port=self.port, **options)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening: connections are refused until `start()`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def fail_next(self, count: int, reply: str = TEMPORARY_FAILURE_REPLY) -> None:
        """Answer the next `count` messages with `reply` (an SMTP error) instead of accepting them."""
        with self._lock:
            self._replies.extend([reply] * count)

    @property
    def messages(self) -> list[ReceivedMail]:
        return self._inbox.snapshot()

    def clear(self) -> None:
        self._inbox.clear()

    def wait_for(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedMail]:
        """The first `count` accepted messages, once they are there; AssertionError after `timeout`."""
        return self._inbox.wait_for(count, timeout, lambda _mail: True, "e-mails")

    def _deliver(self, session: Session, envelope: Envelope) -> str:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self._inbox.add(
            ReceivedMail(
                sender=envelope.mail_from or "",
                recipients=tuple(envelope.rcpt_tos),
                message=message,
                login=login,
            )
        )
        return ACCEPTED_REPLY


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A running SmtpServer per test, accepting any login."""
    with SmtpServer() as server:
        yield server


# ------------------------------------------------------------------------------------------------ webhook


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the receiver answered

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not JSON)."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as an HTML form."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class _Faults:
    failures: list[int] = field(default_factory=list)  # statuses of the next requests
    fail_until: float = 0.0  # monotonic time
    fail_status: int = ERROR_STATUS
    status: int = OK_STATUS
    delay: float = 0.0

    def next_status(self) -> int:
        if self.failures:
            return self.failures.pop(0)
        if time.monotonic() < self.fail_until:
            return self.fail_status
        return self.status


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookHTTPServer

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            return  # the client died mid-request (a kill -9): nothing arrived, as with a real service
        status, delay = self.server.receiver._decide()
        if delay and self.server.receiver._stopping.wait(delay):
            return  # stopping: the client gets nothing, as from a server going away
        parts = urlsplit(self.path)
        self.server.receiver._inbox.add(
            ReceivedRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                status=status,
            )
        )
        accepted = 200 <= status < 300
        # An error body the way ntfy and most chat APIs send one: apprise puts "error" into its message.
        answer = {"ok": True} if accepted else {"error": f"receiver answered {status}", "code": status}
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (its read timeout): nothing to tell it

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


class _WebhookHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        super().__init__((HOST, 0), _WebhookHandler)


class WebhookReceiver(LoopbackServer):
    """A threaded HTTP server on 127.0.0.1 that records requests and fails on demand; a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._inbox: _Inbox[ReceivedRequest] = _Inbox()
        self._serve(_WebhookHTTPServer(self), "webhook-receiver")

    def fail_next(self, count: int, status: int = ERROR_STATUS) -> None:
        """Answer the next `count` requests with `status`."""
        with self._lock:
            self._faults.failures.extend([status] * count)

    def fail_for(self, seconds: float, status: int = ERROR_STATUS) -> None:
        """Answer every request with `status` for the next `seconds`."""
        with self._lock:
            self._faults.fail_until = time.monotonic() + seconds
            self._faults.fail_status = status

    def set_status(self, code: int) -> None:
        """Answer requests with `code` from now on (when no other fault applies)."""
        with self._lock:
            self._faults.status = code

    def delay(self, seconds: float) -> None:
        """Hold every answer `seconds` from now on; 0 answers at once again."""
        with self._lock:
            self._faults.delay = seconds

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request so far, failed ones included."""
        return self._inbox.snapshot()

    @property
    def accepted(self) -> list[ReceivedRequest]:
        """The requests answered with a 2xx status."""
        return [request for request in self._inbox.snapshot() if request.accepted]

    def clear(self) -> None:
        self._inbox.clear()

    def wait_for(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedRequest]:
        """The first `count` accepted requests, once they are there; AssertionError after `timeout`."""
        return self._inbox.wait_for(count, timeout, lambda request: request.accepted, "accepted requests")

    def _decide(self) -> tuple[int, float]:
        with self._lock:
            return self._faults.next_status(), self._faults.delay


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A fresh WebhookReceiver per test."""
    with WebhookReceiver() as receiver:
        yield receiver
