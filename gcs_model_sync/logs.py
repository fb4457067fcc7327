"""One line per event: readable text on a terminal, one JSON object per line for pipelines."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from gcs_model_sync.config import LogFormat

log = logging.getLogger("gcs_model_sync")


def event(level: int, name: str, message: str, **fields: Any) -> None:
    log.log(level, message, extra={"event": name, "fields": fields})


def _ts(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self, terminal: bool = False) -> None:
        super().__init__()
        # On a terminal a progress line may be showing: clear it before writing a log line.
        self.lead = "\r\x1b[K" if terminal else ""

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.lead}{_ts(record)} {record.levelname:<7} {record.getMessage()}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(fmt: LogFormat, verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    terminal = sys.stderr.isatty()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(terminal))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity else logging.INFO)
