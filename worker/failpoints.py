"""Crash points for the crash tests: make "kill -9 exactly between two steps" reproducible.

With NEWSWATCH_FAILPOINT=<name> in its environment, the process kills itself (SIGKILL: no cleanup, no
flush) when it reaches `hit("<name>")`. Without the variable, `hit` is one dictionary lookup. The names
are listed where they are hit: deliver:claimed, deliver:sent.
"""

from __future__ import annotations

import os
import signal

ENV = "NEWSWATCH_FAILPOINT"


def hit(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
