"""What the process may take from the network: a connection budget and a byte rate.

Both are shared by every worker and every slice of every object, so `--workers 8` with big
objects sliced 8 ways never opens 64 connections, and `--bwlimit` caps the total, not each
stream: a sidecar must leave the model server's own traffic room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gcs_model_sync.retry import StopToken

# How far ahead of its booking a reader may run: smooths 1 MiB reads; credit for idle time is
# never saved up, so no burst follows a pause.
BURST_SECONDS = 0.05


class RateLimit:
    """A token bucket by virtual time: each read books the time its bytes take at `rate`
    and sleeps until that booking is due. Fair across threads, exact over the long run."""

    def __init__(
        self,
        rate: float,
        stop: StopToken,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.rate = rate  # bytes per second
        self._sleep = sleep or stop.sleep  # a stop cuts the wait short
        self._clock = clock
        self._lock = threading.Lock()
        self._due = clock()

    def take(self, nbytes: int) -> None:
        """Account for `nbytes` just read; returns once the rate allows them (Interrupted if
        a stop comes first)."""
        with self._lock:
            now = self._clock()
            self._due = max(self._due, now) + nbytes / self.rate
            wait = self._due - now - BURST_SECONDS
        if wait > 0:
            self._sleep(wait)


class Connections:
    """At most `limit` responses open at once; a thread that would go over waits its turn.

    No thread waits for a connection while holding one, so waiting cannot deadlock.
    """

    def __init__(self, limit: int, stop: StopToken) -> None:
        self.limit = limit
        self._stop = stop
        self._free = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.in_use = 0
        self.peak = 0

    def acquire(self) -> None:
        while not self._free.acquire(timeout=0.2):
            self._stop.check()
        with self._lock:
            self.in_use += 1
            self.peak = max(self.peak, self.in_use)

    def release(self) -> None:
        with self._lock:
            self.in_use -= 1
        self._free.release()


class Link:
    """The budget one process's reads share."""

    def __init__(self, connections: int, bwlimit: int | None, stop: StopToken) -> None:
        self.connections = Connections(connections, stop)
        self.rate = RateLimit(bwlimit, stop) if bwlimit else None

    def took(self, nbytes: int) -> None:
        if self.rate is not None:
            self.rate.take(nbytes)
