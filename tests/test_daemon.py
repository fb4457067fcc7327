"""The loop, with an injected pass function: no network, no fixed sleeps."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.daemon import Loop
from gcs_model_sync.engine import Failure, Report
from gcs_model_sync.errors import EXIT_FAILED, EXIT_OK, Interrupted, LockBusy
from gcs_model_sync.health import Health
from gcs_model_sync.metrics import Metrics
from gcs_model_sync.retry import StopToken


def config(tmp_path: Path, **kw: object) -> Config:
    return Config(source=Source.parse("gs://b/p"), dest=tmp_path, **kw)  # type: ignore[arg-type]


class Passes:
    """A scripted pass function: each call pops the next behaviour."""

    def __init__(self, script: list[object], stop: StopToken, after: int | None = None) -> None:
        self.script, self.stop, self.after = script, stop, after
        self.calls: list[float] = []
        self.overlap = False
        self._running = threading.Lock()

    def __call__(self, _config: Config, _stop: StopToken) -> Report:
        if not self._running.acquire(blocking=False):
            self.overlap = True
        try:
            self.calls.append(time.monotonic())
            if self.after is not None and len(self.calls) >= self.after:
                self.stop.set(15)
            step = self.script.pop(0) if self.script else Report()
            if isinstance(step, BaseException):
                raise step
            assert isinstance(step, Report)
            return step
        finally:
            self._running.release()


def failed() -> Report:
    return Report(failures=[Failure("m", "m/1", "boom")])


def loop(cfg: Config, passes: Passes, stop: StopToken) -> tuple[Loop, Health, Metrics]:
    health, metrics = Health(cfg.stuck_after), Metrics()
    return Loop(cfg, stop, passes, health, metrics), health, metrics


def test_first_pass_runs_at_once_and_exceptions_never_stop_the_loop(tmp_path: Path) -> None:
    stop = StopToken()
    passes = Passes([RuntimeError("bug"), LockBusy("busy"), failed(), Report()], stop, after=5)
    started = time.monotonic()
    lp, health, metrics = loop(config(tmp_path, interval=0.02), passes, stop)

    assert lp.run() == EXIT_OK

    assert passes.calls[0] - started < 0.5
    assert len(passes.calls) == 5
    assert not passes.overlap
    assert metrics.passes.labels("error")._value.get() == 3
    assert metrics.passes.labels("noop")._value.get() == 2
    assert health.ready() == (True, "ok")


def test_interval_is_measured_between_pass_starts(tmp_path: Path) -> None:
    stop = StopToken()
    slow = Passes([], stop, after=4)
    real = slow.__call__

    def slow_pass(c: Config, s: StopToken) -> Report:
        time.sleep(0.15)
        return real(c, s)

    lp, _, _ = loop(config(tmp_path, interval=0.2), slow, stop)
    lp.run_pass = slow_pass
    lp.run()
    gaps = [b - a for a, b in zip(slow.calls, slow.calls[1:], strict=False)]
    assert all(0.15 <= g < 0.32 for g in gaps), gaps


def test_stop_interrupts_the_wait_at_once(tmp_path: Path) -> None:
    stop = StopToken()
    passes = Passes([], stop)
    lp, health, _ = loop(config(tmp_path, interval=3600), passes, stop)
    threading.Timer(0.2, stop.set, args=(15,)).start()
    started = time.monotonic()
    assert lp.run() == EXIT_OK
    assert time.monotonic() - started < 2
    assert len(passes.calls) == 1
    assert health.healthy()[0] is False  # the loop is no longer alive


def test_interrupted_pass_ends_the_loop_with_zero(tmp_path: Path) -> None:
    stop = StopToken()
    lp, _, _ = loop(config(tmp_path, interval=0.01), Passes([Interrupted(15)], stop), stop)
    assert lp.run() == EXIT_OK


def test_max_failures_counts_consecutive_failures_only(tmp_path: Path) -> None:
    stop = StopToken()
    script: list[object] = [failed(), failed(), Report(), failed(), failed(), failed(), Report()]
    passes = Passes(script, stop)
    lp, _, metrics = loop(config(tmp_path, interval=0.01, max_failures=3), passes, stop)
    assert lp.run() == EXIT_FAILED
    assert len(passes.calls) == 6
    assert metrics.consecutive_failures._value.get() == 3


def test_readiness_follows_the_last_pass(tmp_path: Path) -> None:
    stop = StopToken()
    health = Health(60)
    assert health.ready()[0] is False
    lp = Loop(
        config(tmp_path, interval=0.01),
        stop,
        Passes([Report(), failed()], stop, 2),
        health,
        Metrics(),
    )
    lp.run()
    assert health.ready() == (False, "last pass failed")


def test_jitter_spreads_the_wait(tmp_path: Path) -> None:
    import datetime as dt
    import random

    stop = StopToken()
    lp = Loop(
        config(tmp_path, interval=10, jitter=0.5),
        stop,
        Passes([], stop),
        Health(60),
        Metrics(),
        rng=random.Random(3),
    )
    start = dt.datetime.now()
    waits = {(lp._next_start(start) - start).total_seconds() for _ in range(20)}
    assert all(10 <= w <= 15 for w in waits)
    assert len(waits) > 10


@pytest.mark.parametrize("running", [0.0, 5.0])
def test_healthz_fails_when_a_pass_is_stuck(
    running: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = Health(stuck_after=2)
    now = time.monotonic()
    monkeypatch.setattr("gcs_model_sync.health.time.monotonic", lambda: now)
    health.pass_begins()
    monkeypatch.setattr("gcs_model_sync.health.time.monotonic", lambda: now + running)
    assert health.healthy()[0] is (running <= 2)
