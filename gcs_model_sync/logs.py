"""One line per event: readable text on a terminal, one JSON object per line for pipelines.

Every line is redacted (redaction.py) as it is formatted, its fields too: a URL's
user:password or a command's token never reaches a log, whichever message carried it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from gcs_model_sync.redaction import redact

LogFormat = Literal["text", "json"]

log = logging.getLogger("gcs_model_sync")


# The source a line is about, when one process syncs several: passes run one at a time, so
# one value is right for every thread of the pass in progress.
_source: str = ""


def event(level: int, name: str, message: str, **fields: Any) -> None:
    if _source:
        message, fields = f"[{_source}] {message}", {"source_name": _source, **fields}
    log.log(level, message, extra={"event": name, "fields": fields})


@contextmanager
def about(source: str) -> Iterator[None]:
    """Every event inside names `source` (text: `[source] ` first; JSON: `source_name`);
    "" names none, as a single source's lines always were."""
    global _source
    before, _source = _source, source
    try:
        yield
    finally:
        _source = before


def _ts(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self, terminal: bool = False) -> None:
        super().__init__()
        # On a terminal a progress line may be showing: clear it before writing a log line.
        self.lead = "\r\x1b[K" if terminal else ""

    def format(self, record: logging.LogRecord) -> str:
        return f"{self.lead}{_ts(record)} {record.levelname:<7} {redact(record.getMessage())}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": redact(record.getMessage()),
        }
        doc.update(_redacted(getattr(record, "fields", {})))
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, default=str)


def _redacted(value: Any) -> Any:
    """`value` with every string in it redacted (dicts and lists walked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def setup(fmt: LogFormat, verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    terminal = sys.stderr.isatty()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(terminal))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity else logging.INFO)
