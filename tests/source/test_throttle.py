"""The process's budget: a byte rate over every reader, and a cap on open connections."""

from __future__ import annotations

import threading
import time

import pytest

from gcs_model_sync.errors import Interrupted
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.throttle import BURST_SECONDS, Connections, RateLimit


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_holds_readers_to_the_rate_over_the_long_run() -> None:
    t = FakeTime()
    limit = RateLimit(1_000_000, StopToken(), t.clock, t.sleep)
    start = t.now
    for _ in range(100):
        limit.take(100_000)  # 10 MB at 1 MB/s: 10 s, less the burst allowance
    assert t.now - start == pytest.approx(10 - BURST_SECONDS)


def test_rate_saves_no_credit_while_idle() -> None:
    t = FakeTime()
    limit = RateLimit(1_000_000, StopToken(), t.clock, t.sleep)
    limit.take(1_000_000)
    t.now += 60  # an idle minute buys no burst afterwards
    before = t.now
    limit.take(2_000_000)
    assert t.now - before == pytest.approx(2 - BURST_SECONDS)


def test_rate_is_shared_by_threads() -> None:
    stop = StopToken()
    limit = RateLimit(4_000_000, stop)
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [limit.take(100_000) for _ in range(5)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 2 MB at 4 MB/s in total: four threads do not get four times the rate.
    assert time.monotonic() - started >= 0.5 - BURST_SECONDS - 0.01


def test_a_stop_cuts_a_rate_wait_short() -> None:
    stop = StopToken()
    limit = RateLimit(1000, stop)
    stop.set()
    with pytest.raises(Interrupted):
        limit.take(10_000)


def test_connections_never_exceed_the_limit() -> None:
    budget = Connections(3, StopToken())
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        for _ in range(20):
            budget.acquire()
            time.sleep(0.001)
            budget.release()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.peak == 3
    assert budget.in_use == 0


def test_waiting_for_a_connection_ends_on_stop() -> None:
    stop = StopToken()
    budget = Connections(1, stop)
    budget.acquire()
    threading.Timer(0.1, stop.set).start()
    with pytest.raises(Interrupted):
        budget.acquire()
