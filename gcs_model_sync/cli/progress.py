"""Download progress on a terminal: bytes and rate, redrawn in place; silent elsewhere."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from gcs_model_sync.units import human


def wanted(log_format: str, verbosity: int, stream: TextIO = sys.stderr) -> bool:
    """Only for people: never in JSON mode, with --quiet, or when stderr is not a terminal."""
    return log_format == "text" and verbosity >= 0 and stream.isatty()


class Progress:
    """A thread that redraws one status line from a byte counter until stopped: the versions
    in flight, bytes, rate and an ETA."""

    def __init__(
        self,
        total: int,
        done: Callable[[], int],
        in_flight: Callable[[], list[str]] | None = None,
        stream: TextIO = sys.stderr,
        every: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.stream, self.every = total, done, stream, every
        self.in_flight = in_flight or list
        self.clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = clock()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.stream.write("\r\x1b[K")
        self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.stream.write("\r\x1b[K" + self.line())
            self.stream.flush()

    def line(self) -> str:
        done = self.done()
        rate = done / max(self.clock() - self._started, 1e-6)
        pct = f" {100 * done / self.total:5.1f}%" if self.total else ""
        eta = f"  ETA {duration((self.total - done) / rate)}" if done and rate > 0 else ""
        names = _names(self.in_flight())
        return f"  {names}{human(done)} / {human(self.total)}{pct}  {human(rate)}/s{eta}"


def _names(ids: list[str], shown: int = 3) -> str:
    """The first few versions in flight, and how many more: a line that fits a terminal."""
    if not ids:
        return ""
    more = f" +{len(ids) - shown}" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more + "  "


def duration(seconds: float) -> str:
    """12s, 1m42s, 2h05m."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
