"""`serve`: the read-only HTTP API, the Atom feeds and the search page, on uvicorn, until SIGTERM/SIGINT."""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import logging.handlers
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worker.cli.common import open_store, options
from worker.config import load_settings
from worker.errors import NewswatchError
from worker.notify import Notifier

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

log = logging.getLogger("newswatch.api")

# Seconds a stop waits for requests in flight; systemd's TimeoutStopSec must be longer.
STOP_GRACE = 5
BACKLOG = 2048
# With several workers: how often the parent looks for one that died, and what ends them all.
WORKER_CHECK_INTERVAL = 0.2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# The exit status of a worker that could not build the app (uvicorn's own for a failed start-up is 3).
WORKER_STARTUP_FAILED = 3
PR_SET_PDEATHSIG = 1  # prctl(2)


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


def make_server(
    app: Any, *, access_log: bool = False, channel: socket.socket | None = None
) -> uvicorn.Server:
    """uvicorn for `app`, logging through Newswatch's own set-up (its start-up chatter only at DEBUG); with
    a `channel`, serving the connections handed over on it (`worker.api.handoff`)."""
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
    if channel is not None:
        from worker.api.handoff import HandedServer

        return HandedServer(config, channel)
    return uvicorn.Server(config)


@dataclass(frozen=True)
class AppFactory:
    """Builds the app inside a worker process. Workers start with `spawn` (a fresh interpreter, not a
    fork of this one, whose threads and database connections a fork would copy half-way), so this is
    pickled: plain values only. The parent already migrated the store and checked the settings."""

    config: Path | None
    log_level: str
    log_records: Any  # a multiprocessing queue: the parent writes every worker's log lines
    started: Any  # a multiprocessing queue: each worker's pid once its app is built

    def __call__(self) -> FastAPI:
        from worker.api.app import create_app
        from worker.runtime import start_runtime

        # The parent's handlers (stderr, the rotating log file) write this process's records: one
        # RotatingFileHandler per process would rotate the same file each on its own.
        queued = logging.handlers.QueueHandler(self.log_records)
        logging.basicConfig(level=self.log_level.upper(), handlers=[queued], force=True)
        return create_app(start_runtime(load_settings(self.config), prepare=False))


def _stop_with(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when `parent` dies, however it dies (Linux; a parent
    killed with SIGKILL cannot stop its workers itself)."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before that
        raise SystemExit(0)


def _worker_main(factory: AppFactory, channel: socket.socket, access_log: bool, parent: int) -> None:
    """A worker process: the app, on the connections the parent hands over on `channel`, until SIGTERM
    (from the parent) or SIGINT."""
    # uvicorn stops gracefully on either, then raises the signal again for the handler it found: these
    # do nothing, so the worker ends with status 0. Ctrl-C reaches the parent too, which stops them all.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_with(parent)
    try:
        app = factory()
    except NewswatchError as exc:
        log.error("an API worker cannot start: %s", exc)
        raise SystemExit(WORKER_STARTUP_FAILED) from exc
    factory.started.put(os.getpid())
    make_server(app, access_log=access_log, channel=channel).run()


class Workers:
    """Several server processes until SIGTERM/SIGINT. This process accepts the connections and hands each
    to the next worker in turn (`worker.api.handoff`). One that dies is replaced; one that cannot start
    stops them all (the next would fail the same way)."""

    def __init__(self, factory: AppFactory, listener: socket.socket, count: int, *, access_log: bool) -> None:
        self._factory = factory
        self._listener = listener
        self._count = count
        self._access_log = access_log
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._processes: list[Any] = []
        self._channels: list[socket.socket] = []  # this process's end of each worker's channel

    def _start(self, index: int) -> Any:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = self._context.Process(
            target=_worker_main,
            args=(self._factory, theirs, self._access_log, os.getpid()),
            name=f"newswatch-api-{index + 1}",
            daemon=True,  # never outlive this process, whatever ends it
        )
        process.start()
        theirs.close()
        if index < len(self._channels):
            self._channels[index].close()  # a dead worker's: connections still queued there are dropped
            self._channels[index] = ours
        else:
            self._channels.append(ours)
        return process

    def _dispatch(self) -> None:
        """Accepts connections and hands each to the next worker in turn, skipping any that cannot take it
        (gone, or too far behind), until the stop."""
        from worker.api.handoff import hand_over

        turn = 0
        while not self._stop.is_set():
            try:
                connection, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():  # out of file descriptors, say: let some close
                    log.warning("cannot accept a connection: %s", exc.strerror or exc)
                    self._stop.wait(WORKER_CHECK_INTERVAL)
                continue
            with connection:
                channels = list(self._channels)
                for offset in range(len(channels)):
                    try:
                        hand_over(channels[(turn + offset) % len(channels)], connection)
                    except OSError:
                        continue
                    break
                turn += 1

    def run(self, on_ready: Callable[[], None]) -> None:
        """Calls `on_ready` once every worker has its app. Raises NewswatchError when one could not."""
        handlers = {sig: signal.signal(sig, lambda _s, _f: self._stop.set()) for sig in STOP_SIGNALS}
        listener = logging.handlers.QueueListener(
            self._factory.log_records, *logging.getLogger().handlers, respect_handler_level=True
        )
        listener.start()
        failed = False
        waiting = self._count
        self._listener.settimeout(WORKER_CHECK_INTERVAL)  # the dispatcher looks for the stop this often
        dispatcher = threading.Thread(target=self._dispatch, name="newswatch-api-accept", daemon=True)
        try:
            self._processes = [self._start(index) for index in range(self._count)]
            dispatcher.start()
            while not self._stop.wait(WORKER_CHECK_INTERVAL):
                while waiting and not self._factory.started.empty():
                    self._factory.started.get()
                    waiting -= 1
                    if not waiting:
                        on_ready()
                for index, process in enumerate(self._processes):
                    if process.is_alive():
                        continue
                    if process.exitcode == WORKER_STARTUP_FAILED:
                        failed = True
                        self._stop.set()
                        break
                    log.warning(
                        "API worker %s ended (exit status %s); starting another",
                        process.pid,
                        process.exitcode,
                    )
                    self._processes[index] = self._start(index)
        finally:
            self._stop.set()
            if dispatcher.is_alive():
                dispatcher.join()
            for process in self._processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
            for process in self._processes:
                process.join(STOP_GRACE + 5)
                if process.is_alive():
                    process.kill()
                    process.join()
            for channel in self._channels:
                channel.close()
            listener.stop()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if failed:
            raise NewswatchError("the API workers could not start (see the error above)")


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
    runtime = open_store(ctx)
    sock = listen(host, api.port if port is None else port)
    access_log = options(ctx).log_level.lower() == "debug"
    url = base_url(sock)
    notifier = Notifier.from_environment()

    def ready() -> None:
        workers = f", {api.workers} workers" if api.workers > 1 else ""
        log.info("serving %s (API docs at /docs%s%s)", url, "; token required" if api.token else "", workers)
        notifier.ready(f"serving {url}")

    # uvicorn stops gracefully on SIGTERM, then raises the signal again for the handler it found: this one,
    # so that a requested stop ends with exit status 0, as `newswatch run` does. (With several workers, the
    # supervisor stops them and returns.)
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        if api.workers > 1:
            runtime.engine.dispose()  # each worker opens its own connections; this process serves none
            spawn = multiprocessing.get_context("spawn")
            factory = AppFactory(options(ctx).config, options(ctx).log_level, spawn.Queue(), spawn.Queue())
            Workers(factory, sock, api.workers, access_log=access_log).run(on_ready=ready)
        else:
            from worker.api.app import create_app  # here: FastAPI loads only for this command

            server = make_server(create_app(runtime), access_log=access_log)
            ready()  # connections made from here on wait in the backlog
            server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
        notifier.close()
