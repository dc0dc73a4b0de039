"""Loading tag rules from TOML: the I/O side of `worker.analysis.tagging`, which stays pure.

Every failure becomes a ConfigError whose problems name the file (and the line, for TOML syntax), so
`newswatch check` and the daemon can show the user exactly what to fix.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from worker.analysis.tagging import RuleError, RuleSet, rules_from_mapping
from worker.errors import ConfigError

DEFAULT_RULES_PATH = Path(__file__).resolve().parents[1] / "config" / "tags.toml"


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rules file; raise ConfigError listing every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read tag rules: {exc.strerror or exc}"]) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: tag rules are not UTF-8 text: {exc.reason} at byte {exc.start}"]
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc
    try:
        return rules_from_mapping(data, source=str(path))
    except RuleError as exc:
        raise ConfigError(exc.problems) from exc
