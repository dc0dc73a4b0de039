"""Logging set-up: readable lines on a terminal, JSON lines when asked, secrets masked in both.

- Text: "time level logger: message". Under journald (stderr is the stream $JOURNAL_STREAM names) the time is
  left out, since journald stamps every line, and a "<N>" syslog priority prefix lets `journalctl -p` filter.
- JSON: one object per line with time, level, logger, message, the record's extra fields and any exception.
- Every line passes through `redact_text` last: a URL with a password or a token in it is masked even if
  some code forgot to call `redact_url` (invariant 6).
- Under systemd with LogsDirectory= ($LOGS_DIRECTORY), JSON lines also go to `<command>.log` there,
  rotated by size, for log shippers that read files.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from worker.redact import redact_url

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
LOGS_DIRECTORY_ENV = "LOGS_DIRECTORY"
JOURNAL_STREAM_ENV = "JOURNAL_STREAM"
LOG_FILE_BYTES = 10 * 1024 * 1024  # one log file in LOGS_DIRECTORY grows to this, then rotates
LOG_FILE_BACKUPS = 5
# Libraries that are chatty at INFO: they speak at WARNING unless the whole log is at DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic")
# syslog priorities (sd-daemon(3)) by logging level, for journald's SyslogLevelPrefix.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# Attributes every LogRecord has: anything else on a record came from `extra=` and goes into JSON lines.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    """`text` with every URL in it passed through `redact_url`."""
    if "://" not in text:
        return text
    return _URL.sub(lambda match: redact_url(match.group(0)), text)


def stderr_is_journal(stream: TextIO | None = None) -> bool:
    """Whether `stream` (stderr) is connected to journald: $JOURNAL_STREAM names its device and inode.

    A process that merely inherited the variable but writes somewhere else (a pipe, a file) is not.
    """
    value = os.environ.get(JOURNAL_STREAM_ENV, "")
    device, _, inode = value.partition(":")
    if not device.isdigit() or not inode.isdigit():
        return False
    try:
        stat = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


class TextFormatter(logging.Formatter):
    def __init__(self, journal: bool = False) -> None:
        super().__init__(JOURNAL_FORMAT if journal else TEXT_FORMAT)
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        line = redact_text(super().format(record))
        if self.journal:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{line}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = _plain(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(_redacted(entry), ensure_ascii=False)


def _plain(value: Any) -> Any:
    """A JSON-ready form of an extra field: JSON's own types as they are, anything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    return value


def log_file(command: str | None) -> Path | None:
    """`<command>.log` in systemd's LogsDirectory, when the process runs under one."""
    directory = os.environ.get(LOGS_DIRECTORY_ENV, "").split(":")[0]
    if not directory or not command:
        return None
    return Path(directory) / f"{command}.log"


def setup_logging(level: str, fmt: str = "text", file: Path | None = None) -> None:
    """Configure the root logger: stderr in `fmt` ("text" or "json"), plus JSON lines to `file` if given."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(journal=stderr_is_journal()))
    handlers: list[logging.Handler] = [handler]
    file_error = None
    if file is not None:
        try:
            rotating = logging.handlers.RotatingFileHandler(
                file, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
            )
        except OSError as exc:  # a log file we cannot write must not keep the service from starting
            file_error = f"cannot write the log file {file}: {exc.strerror or exc}"
        else:
            rotating.setFormatter(JsonFormatter())
            handlers.append(rotating)
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    if file_error is not None:
        logging.getLogger("newswatch").warning("%s", file_error)
