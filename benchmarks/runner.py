"""What the benchmark scripts share: the error type, argument checks, percentiles, a work directory."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path


class BenchmarkError(Exception):
    """A step of the benchmark failed; the message says which and why."""


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, not {text!r}")
    return value


def host_count(text: str) -> int:
    """argparse type: how many loopback addresses (127.0.0.1 … 127.0.0.254) to spread servers over."""
    value = positive(text)
    if value > 254:
        raise argparse.ArgumentTypeError(f"expected at most 254 hosts, not {value}")
    return value


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def nearest_rank(values: Sequence[float], fraction: float) -> float:
    """The value at rank `fraction × n` of the sorted values (no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_in_workdir(
    name: str,
    keep: bool,
    body: Callable[[Path], int],
    *,
    errors: tuple[type[Exception], ...] = (BenchmarkError,),
    kept: str,
) -> int:
    """`body(workdir)` in a temporary directory `bench-<name>-…` (left in place with `keep`); a failure it
    expects (`errors`) ends as one `error:` line and exit status 1, Ctrl-C as 130. `kept` says what --keep
    would have kept."""
    prefix = f"bench-{name}-"
    try:
        if keep:
            workdir = Path(tempfile.mkdtemp(prefix=prefix))
            print(f"[{name}] keeping {workdir}", file=sys.stderr, flush=True)
            return body(workdir)
        with tempfile.TemporaryDirectory(prefix=prefix) as temp:
            return body(Path(temp))
    except errors as exc:
        hint = "" if keep else f" (run with --keep to keep {kept})"
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
