"""The unit files: what they promise (read from the files), and what systemd-analyze says of them.

`systemd-analyze verify` insists that the ExecStart binary exists and is executable. The units name
/usr/local/bin/newswatch, where the README installs it; here the test verifies a copy whose ExecStart names
the `newswatch` script this Python installed, so verify checks a real executable and everything else of the
unit as shipped. A deliberately broken copy must fail, so the check is known to bite.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from worker.config import parse_duration
from worker.daemon import STOP_GRACE

UNITS = REPO / "systemd"
INSTALLED_BINARY = "/usr/local/bin/newswatch"
MAX_EXPOSURE = 2.0
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def _directives(path: Path) -> dict[str, list[str]]:
    """Every `Key=value` of the unit, by key (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def _one(unit: dict[str, list[str]], key: str) -> str:
    [value] = unit[key]
    return value


@pytest.mark.parametrize(
    ("name", "command"), [("newswatch.service", "run"), ("newswatch-api.service", "serve")]
)
def test_units_run_as_notify_services_in_systemds_directories(name: str, command: str) -> None:
    unit = _directives(UNITS / name)
    assert _one(unit, "ExecStart") == f"{INSTALLED_BINARY} --config /etc/newswatch/newswatch.toml {command}"
    assert _one(unit, "Type") == "notify"
    assert _one(unit, "Restart") == "on-failure"
    assert _one(unit, "DynamicUser") == "yes" and _one(unit, "User") == "newswatch"
    for directory in ("StateDirectory", "ConfigurationDirectory", "LogsDirectory"):
        assert _one(unit, directory) == "newswatch"
    # Hardened, yet able to reach feeds, apprise services and PostgreSQL (TCP or its unix socket).
    assert set(_one(unit, "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "PrivateNetwork" not in unit and "IPAddressDeny" not in unit


def test_the_daemon_unit_has_a_watchdog_a_reload_and_time_to_stop() -> None:
    unit = _directives(UNITS / "newswatch.service")
    assert parse_duration(_one(unit, "WatchdogSec")) > 0
    assert _one(unit, "ExecReload") == "kill -HUP $MAINPID"
    # A stop waits STOP_GRACE for the running poll, then as long for the message being sent.
    assert parse_duration(_one(unit, "TimeoutStopSec")) > 2 * STOP_GRACE


def _exposure(unit: Path) -> float:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert match, done.stdout + done.stderr
    return float(match.group(1))


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)


def _installed_copy(name: str, directory: Path, change: tuple[str, str] | None = None) -> Path:
    """The unit with ExecStart pointing at this Python's `newswatch` script (and `change` applied)."""
    script = Path(sys.executable).parent / "newswatch"
    binary = str(script) if script.is_file() else shutil.which("newswatch")
    assert binary, "the newswatch console script is not installed (pip install -e .)"
    text = (UNITS / name).read_text(encoding="utf-8").replace(INSTALLED_BINARY, binary)
    if change is not None:
        assert change[0] in text
        text = text.replace(*change)
    copy = directory / name
    copy.write_text(text, encoding="utf-8")
    return copy


@needs_systemd_analyze
@pytest.mark.parametrize("name", ["newswatch.service", "newswatch-api.service"])
def test_systemd_analyze_rates_the_units_exposure_low(name: str) -> None:
    exposure = _exposure(UNITS / name)
    assert exposure <= MAX_EXPOSURE, f"{name}: exposure {exposure}"


@needs_systemd_analyze
@pytest.mark.parametrize("name", ["newswatch.service", "newswatch-api.service"])
def test_systemd_analyze_verify_is_clean(name: str, tmp_path: Path) -> None:
    done = _verify(_installed_copy(name, tmp_path))
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


@needs_systemd_analyze
def test_systemd_analyze_catches_a_broken_or_weakened_unit(tmp_path: Path) -> None:
    broken = _installed_copy(
        "newswatch.service", tmp_path, ("ProtectSystem=strict", "ProtectSystem=sometimes")
    )
    done = _verify(broken)
    assert "sometimes" in done.stdout + done.stderr  # reported, though verify still exits 0
    weakened = _installed_copy("newswatch.service", tmp_path, ("CapabilityBoundingSet=\n", ""))
    assert _exposure(weakened) > _exposure(UNITS / "newswatch.service")
