"""`serve`: the read-only HTTP API, the Atom feeds and the search page, on uvicorn, until SIGTERM/SIGINT."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli.common import open_store, options
from worker.config import load_settings
from worker.errors import NewswatchError
from worker.notify import Notifier

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("newswatch.api")

# Seconds a stop waits for requests in flight; systemd's TimeoutStopSec must be longer.
STOP_GRACE = 5
BACKLOG = 2048


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Only loopback is open to anyone; any other address needs the API token."""
    if not token and not is_loopback(host):
        raise NewswatchError(
            f"refusing to listen on {host} without an API token: set [api] token (or NEWSWATCH_API_TOKEN) "
            "so that requests must carry it, or listen on 127.0.0.1"
        )


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: a free port); one clear error when the address cannot be had.

    Connections made before uvicorn runs wait in the backlog, so the server is ready from here on.
    """
    sock = None
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise NewswatchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if sock.family == socket.AF_INET6 else f"http://{host}:{port}/"


def make_server(app: Any, *, access_log: bool = False) -> uvicorn.Server:
    """uvicorn for `app`, logging through Newswatch's own set-up (its start-up chatter only at DEBUG)."""
    import uvicorn  # here, not at the top: every other command starts faster without it

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=access_log,
        server_header=False,
        backlog=BACKLOG,
        timeout_graceful_shutdown=STOP_GRACE,
        lifespan="on",
    )
    return uvicorn.Server(config)


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: the config's api.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Port (default: the config's api.port, 8484; 0 picks a free one)."
        ),
    ] = None,
) -> None:
    """Serve the read-only HTTP API, Atom feeds per tag and the search page until SIGTERM/SIGINT."""
    api = load_settings(options(ctx).config).api
    host = host if host is not None else api.host
    check_binding(host, api.token)
    from worker.api.app import create_app  # here: FastAPI loads only for this command

    runtime = open_store(ctx)
    sock = listen(host, api.port if port is None else port)
    server = make_server(create_app(runtime), access_log=options(ctx).log_level.lower() == "debug")
    url = base_url(sock)
    log.info("serving %s (API docs at /docs%s)", url, "; token required" if api.token else "")
    notifier = Notifier.from_environment()
    notifier.ready(f"serving {url}")
    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler it found: this one,
    # so that a requested stop ends with exit status 0, as `newswatch run` does.
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
        notifier.close()
