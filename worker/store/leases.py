"""Leases: how workers claim feeds and deliveries without holding locks across network I/O.

A claimed row carries `lease_owner` ("host:pid") and `lease_until`. Whoever finishes the work clears both in
the transaction that records the result. A worker that dies leaves its leases behind: other hosts take the
rows over once `lease_until` passes; a restart on the same host releases them at once, because it can see
that the owning process is gone.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.selectable import GenerativeSelect
from sqlmodel import Session, col, select

from worker.store.db import session_scope
from worker.store.models import Delivery, Feed

_LEASED = (Feed, Delivery)


_Query = TypeVar("_Query", bound=GenerativeSelect)


def skip_locked(query: _Query, session: Session) -> _Query:
    """On PostgreSQL, let concurrent claimers pass over rows another worker is claiming (no waiting);
    SQLite has one writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def host_name() -> str:
    return socket.gethostname()[:40]


def worker_id() -> str:
    """Names this process in leases, so a dead worker's rows can be told from a live one's."""
    return f"{host_name()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def release_dead_leases(session: Session, host: str, alive: Callable[[int], bool]) -> int:
    """Give back the leases of this host's processes that no longer run (a crash or kill -9).

    Leases of other hosts are left to expire: we cannot see their processes.
    """
    released = 0
    for model in _LEASED:
        owners = session.exec(
            select(model.lease_owner).where(col(model.lease_owner).startswith(f"{host}:")).distinct()
        ).all()
        for owner in owners:
            pid = owner.rsplit(":", 1)[-1] if owner else ""
            if pid.isdigit() and not alive(int(pid)):
                result = session.execute(
                    update(model)
                    .where(col(model.lease_owner) == owner)
                    .values(lease_owner=None, lease_until=None)
                )
                released += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return released


def recover_leases(engine: Engine) -> int:
    """At start: release what crashed processes of this host left, so feeds and alerts go out at once."""
    with session_scope(engine) as session:
        return release_dead_leases(session, host_name(), pid_alive)
