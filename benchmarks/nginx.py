"""A private static file server on loopback for benchmarks: nginx when installed, else Python's http.server.

Benchmarks need a server that is not the bottleneck: nginx serves thousands of static feeds a second from
one core and answers conditional GETs (its default ETag and Last-Modified headers) with 304. The Python
fallback keeps a benchmark runnable without nginx, but it may then measure the server; callers say so.

    with serve_folder(root, ["127.0.0.1", "127.0.0.2"]) as server:
        server.url("/feeds/00001.rss", "127.0.0.2")
        server.statuses()    # HTTP statuses answered so far, from the access log

Every address listens on the same port. Any 127.x.y.z address works on Linux without setup, and each one
is a host of its own to a client's per-host connection limits.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

NGINX_INSTALL_HINT = (
    "nginx not found: install it (Debian/Ubuntu: apt-get install nginx-light) for a faster server"
)
DEFAULT_ADDRESSES = ("127.0.0.1",)
NGINX_WORKERS = 1  # static files on loopback: one worker keeps up and leaves the other cores to the clients
START_TIMEOUT = 10.0  # seconds for the server to answer its first request
STOP_TIMEOUT = 5.0  # seconds for a graceful stop before the process is killed
_POLL_INTERVAL = 0.05
_LOG_TAIL_CHARS = 2000
# Served types, so clients see what a real news site sends.
_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "xml": "application/xml",
    "opml": "text/xml",
}


class ServerError(Exception):
    """The server could not be started; the message says why in one line or a short log excerpt."""


@dataclass(frozen=True)
class StaticServer:
    kind: str  # "nginx" or "python"
    root: Path
    addresses: tuple[str, ...]
    port: int
    access_log: Path

    def url(self, path: str, address: str | None = None) -> str:
        return f"http://{address or self.addresses[0]}:{self.port}/{path.lstrip('/')}"

    def statuses(self) -> Counter[int]:
        """How many requests got each HTTP status so far (the access log holds one status per line)."""
        if not self.access_log.exists():
            return Counter()
        text = self.access_log.read_text(encoding="ascii", errors="replace")
        return Counter(int(line) for line in text.split() if line.isdigit())


def nginx_binary() -> str | None:
    """The nginx executable on PATH or in the sbin directories that a non-root PATH often lacks."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")


def use_nginx(choice: str, say: Callable[[str], None]) -> bool:
    """For `--server auto|nginx|python`: nginx unless told otherwise or missing; the fallback is announced
    through `say`, since it may be the bottleneck. Raises ServerError when nginx is asked for and missing."""
    if choice == "nginx" and nginx_binary() is None:
        raise ServerError(NGINX_INSTALL_HINT)
    if choice == "auto" and nginx_binary() is None:
        say(NGINX_INSTALL_HINT)
    if choice == "python" or nginx_binary() is None:
        say("WARNING: serving with Python's threaded server, which may be the bottleneck")
        return False
    return True


def free_port(addresses: Sequence[str]) -> int:
    """A port that is free on every address now (another process may still take it before we do)."""
    while True:
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port: int = probe.getsockname()[1]
        if all(_bindable(address, port) for address in addresses[1:]):
            return port


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


@contextmanager
def serve_folder(
    root: Path, addresses: Sequence[str] = DEFAULT_ADDRESSES, *, prefer_nginx: bool = True
) -> Iterator[StaticServer]:
    """nginx if it is installed (and preferred), else the Python server."""
    server = serve_with_nginx if prefer_nginx and nginx_binary() else serve_with_python
    with server(root, addresses) as running:
        yield running


@contextmanager
def serve_with_nginx(
    root: Path, addresses: Sequence[str] = DEFAULT_ADDRESSES, *, workers: int = NGINX_WORKERS
) -> Iterator[StaticServer]:
    binary = nginx_binary()
    if binary is None:
        raise ServerError(NGINX_INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as work:
        prefix = Path(work)
        port = free_port(addresses)
        server = StaticServer("nginx", root.resolve(), tuple(addresses), port, prefix / "access.log")
        config = prefix / "nginx.conf"
        config.write_text(nginx_config(server, prefix, workers), encoding="utf-8")
        error_log = prefix / "error.log"
        command = [binary, "-p", str(prefix), "-c", str(config), "-e", str(error_log)]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait_until_serving(server, process, error_log)
            yield server
        finally:
            _stop(process)


def nginx_config(server: StaticServer, prefix: Path, workers: int = NGINX_WORKERS) -> str:
    """A self-contained config: pid, logs and temp dirs are all under `prefix`, nothing in /etc or /var."""
    # A root master hands requests to workers running as `nobody`, who cannot enter a private temp dir:
    # keep the workers under the caller's own identity instead.
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    listens = "".join(f"        listen {address}:{server.port};\n" for address in server.addresses)
    types = "".join(f"        {mime} {ext};\n" for ext, mime in _TYPES.items())
    temp = "".join(
        f"    {name}_temp_path {prefix / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes {workers};\n"
        "daemon off;\n"
        f"pid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"{temp}"
        f"    types {{\n{types}    }}\n"
        "    default_type application/octet-stream;\n"
        "    log_format status_only '$status';\n"
        f"    access_log {server.access_log} status_only;\n"
        # sendfile trips over some container and network file systems; at these sizes it saves nothing.
        "    sendfile off;\n"
        "    server_tokens off;\n"
        "    keepalive_requests 100000;\n"
        "    keepalive_timeout 60s;\n"
        "    server {\n"
        f"{listens}"
        f"        root {server.root};\n"
        "    }\n"
        "}\n"
    )


def _wait_until_serving(server: StaticServer, process: subprocess.Popen[bytes], error_log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise ServerError(f"nginx exited with status {process.returncode}: {_tail(error_log, stderr)}")
        if all(_answers(address, server.port) for address in server.addresses):
            return
        time.sleep(_POLL_INTERVAL)
    _stop(process)
    raise ServerError(f"nginx did not answer within {START_TIMEOUT:g} s: {_tail(error_log, '')}")


def _answers(address: str, port: int) -> bool:
    """Any HTTP answer counts: a 404 for "/" still proves the server is up."""
    try:
        with socket.create_connection((address, port), timeout=1) as sock:
            sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False


def _tail(path: Path, fallback: str) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return (text or fallback).strip()[-_LOG_TAIL_CHARS:] or "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGQUIT lets nginx finish open requests; a server that hangs is killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stderr:
        process.stderr.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    """Keeps connections open like nginx does and logs only the status, to the server's access log."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle's algorithm the body waits for the client's
    # delayed ACK (40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True
    log_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *args: Any, access_log: Path, **kwargs: Any) -> None:
        self.access_log = access_log
        self.extensions_map = {**self.extensions_map, **{f".{e}": m for e, m in _TYPES.items()}}
        super().__init__(*args, **kwargs)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        with self.log_lock, self.access_log.open("a", encoding="ascii") as log:
            log.write(f"{int(code)}\n")

    def log_message(self, format: str, *args: Any) -> None:
        """Errors are answered to the client; the benchmark's own output stays clean."""


class _ThreadedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 drops connections when a client opens dozens at once


@contextmanager
def serve_with_python(root: Path, addresses: Sequence[str] = DEFAULT_ADDRESSES) -> Iterator[StaticServer]:
    """Python's threaded static server: Last-Modified and 304 on If-Modified-Since, no ETag."""
    with tempfile.TemporaryDirectory(prefix="bench-httpd-") as work, ExitStack() as stack:
        port = free_port(addresses)
        server = StaticServer("python", root.resolve(), tuple(addresses), port, Path(work) / "access.log")
        handler = partial(_QuietHandler, directory=str(server.root), access_log=server.access_log)
        for address in addresses:
            httpd = _ThreadedServer((address, port), handler)
            thread = threading.Thread(target=httpd.serve_forever, name=f"httpd-{address}", daemon=True)
            thread.start()
            stack.callback(httpd.server_close)
            stack.callback(httpd.shutdown)
        yield server
