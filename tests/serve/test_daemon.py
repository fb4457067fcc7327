"""The loop, with an injected pass function: no network, no fixed sleeps."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import EXIT_FAILED, EXIT_OK, Interrupted, LockBusy
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.report import Failure, FailureKind, Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.serve.daemon import Every, Loop
from gcs_model_sync.serve.health import Health
from gcs_model_sync.serve.metrics import Metrics


def config(tmp_path: Path, **kw: object) -> Config:
    return Config(source=Source.parse("gs://bkt/p"), dest=tmp_path, **kw)  # type: ignore[arg-type]


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


def listed(*on_disk: str, failures: int = 0) -> Report:
    """A pass whose listing completed, leaving these version folders on disk."""
    bad = [Failure("m", "m/9", "bad archive", FailureKind.CONTENT)] * failures
    return Report(plan=Plan(), failures=bad, on_disk=frozenset(on_disk))


def loop(cfg: Config, passes: Passes, stop: StopToken) -> tuple[Loop, Health, Metrics]:
    health, metrics = Health(cfg.stuck_after), Metrics()
    return Loop(cfg, stop, passes, health, metrics), health, metrics


def test_first_pass_runs_at_once_and_exceptions_never_stop_the_loop(tmp_path: Path) -> None:
    stop = StopToken()
    (tmp_path / "m" / "1").mkdir(parents=True)
    script: list[object] = [RuntimeError("bug"), LockBusy("busy"), failed(), listed("m/1")]
    passes = Passes(script, stop, after=5)
    started = time.monotonic()
    lp, health, metrics = loop(config(tmp_path, interval=0.02), passes, stop)

    assert lp.run() == EXIT_OK

    assert passes.calls[0] - started < 0.5
    assert len(passes.calls) == 5
    assert not passes.overlap
    assert metrics.passes.labels("error")._value.get() == 3
    assert metrics.passes.labels("noop")._value.get() == 2
    assert health.ready() == (True, "ok: 1 version(s) on disk")


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


def readiness(
    lp: Loop, stop: StopToken, passes: int, each: Callable[[int], object] | None = None
) -> list[tuple[bool, str]]:
    """Run the loop for `passes` passes: /readyz as each one ended; `each(n)` after pass n."""
    states: list[tuple[bool, str]] = []
    ends = lp.health.pass_ends

    def pass_ends(*args: Any, **kwargs: Any) -> None:
        ends(*args, **kwargs)
        states.append(lp.health.ready())
        if each:
            each(len(states))
        if len(states) == passes:
            stop.set(15)

    lp.health.pass_ends = pass_ends  # type: ignore[method-assign]
    lp.run()
    return states


def test_failed_passes_never_unready_a_replica_with_versions_on_disk(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    stop = StopToken()
    # a bad upload (listed, failed), an outage (no listing), a bug, a lock: all failures
    script: list[object] = [listed("m/1"), listed("m/1", failures=1), failed()]
    script += [RuntimeError("bug"), LockBusy("busy")]
    lp, _, metrics = loop(config(tmp_path, interval=0.01), Passes(script, stop), stop)
    states = readiness(lp, stop, 5)
    assert states[0] == (True, "ok: 1 version(s) on disk")
    assert states[1:] == [(True, "ok: 1 version(s) on disk; the last pass failed")] * 4
    assert metrics.consecutive_failures._value.get() == 4
    assert metrics.versions_on_disk._value.get() == 1


def test_readiness_needs_a_listing_and_ends_when_the_versions_are_gone(tmp_path: Path) -> None:
    (tmp_path / "m" / "1").mkdir(parents=True)
    stop = StopToken()
    # the outage comes first: versions on disk, but the bucket was never listed
    script: list[object] = [failed(), listed(), listed("m/1"), failed(), failed()]
    lp, _, metrics = loop(config(tmp_path, interval=0.01), Passes(script, stop), stop)

    def remove_by_hand(n: int) -> None:
        if n == 4:  # during an outage
            (tmp_path / "m" / "1").rmdir()

    states = readiness(lp, stop, 5, remove_by_hand)
    assert [why for _ok, why in states] == [
        "no pass has listed the bucket yet",
        "no model version on disk",
        "ok: 1 version(s) on disk",
        "ok: 1 version(s) on disk; the last pass failed",
        "no model version on disk",
    ]
    assert metrics.versions_on_disk._value.get() == 0


def test_jitter_spreads_the_wait() -> None:
    import random

    job = Every(10, 0.5, rng=random.Random(3), clock=lambda: 1000.0)
    waits = {job.next_start(1000.0) - 1000.0 for _ in range(20)}
    assert all(10 <= w <= 15 for w in waits)
    assert len(waits) > 10


@pytest.mark.parametrize("running", [0.0, 5.0])
def test_healthz_fails_when_a_pass_is_stuck(
    running: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = Health(stuck_after=2)
    now = time.monotonic()
    monkeypatch.setattr("gcs_model_sync.serve.health.time.monotonic", lambda: now)
    health.pass_begins()
    monkeypatch.setattr("gcs_model_sync.serve.health.time.monotonic", lambda: now + running)
    assert health.healthy()[0] is (running <= 2)


class Records(logging.Handler):
    """What the loop logged, whatever logs.setup did to the logger before."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @contextlib.contextmanager
    def attached(self) -> Iterator[Records]:
        logger = logging.getLogger("gcs_model_sync")
        level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)


@pytest.mark.parametrize("verbosity", [0, 1])
def test_run_logs_the_reason_of_an_internal_failure(tmp_path: Path, verbosity: int) -> None:
    stop = StopToken()
    passes = Passes([KeyError("generation"), Report()], stop, after=2)
    lp, _health, metrics = loop(config(tmp_path, interval=0.02, verbosity=verbosity), passes, stop)

    with Records().attached() as seen:
        assert lp.run() == EXIT_OK  # the loop went on

    assert len(passes.calls) == 2
    assert metrics.passes.labels("error")._value.get() == 1
    errors = [r for r in seen.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert "internal error: KeyError: 'generation'" in message
    assert "\n" not in message
    tracebacks = [r.getMessage() for r in seen.records if "Traceback" in r.getMessage()]
    if verbosity:
        assert len(tracebacks) == 1
        assert "KeyError: 'generation'" in tracebacks[0]
    else:
        assert tracebacks == []
        assert "-v" in message
        assert all(r.exc_info is None for r in seen.records)


def test_run_logs_the_reason_of_an_expected_failure_without_a_traceback(tmp_path: Path) -> None:
    stop = StopToken()
    passes = Passes([LockBusy("another gcs-model-sync is writing"), Report()], stop, after=2)
    lp, _health, _metrics = loop(config(tmp_path, interval=0.02, verbosity=1), passes, stop)

    with Records().attached() as seen:
        assert lp.run() == EXIT_OK

    errors = [r.getMessage() for r in seen.records if r.levelno == logging.ERROR]
    assert errors == ["another gcs-model-sync is writing"]
    assert not any("Traceback" in r.getMessage() for r in seen.records)


class WallClock:
    """The system clock as `schedule` and the loop read it, steppable like NTP or an admin."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import datetime as dt
        import types

        import schedule

        self.offset = dt.timedelta(0)
        clock = self

        class SteppedDatetime(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
                return dt.datetime.now(tz) + clock.offset

        shim = types.SimpleNamespace(datetime=SteppedDatetime, timedelta=dt.timedelta, time=dt.time)
        monkeypatch.setattr(schedule, "datetime", shim)
        monkeypatch.setattr("gcs_model_sync.serve.daemon.dt", shim)

    def step(self, seconds: float) -> None:
        import datetime as dt

        self.offset += dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("step", [-3600, 3600])
def test_a_wall_clock_step_never_moves_the_next_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    """Back an hour: the next pass was an hour late (while /healthz stayed green); forward:
    it ran at once. Waits are timed on the monotonic clock; schedule still holds the job."""
    wall = WallClock(monkeypatch)
    stop = StopToken()
    passes = Passes([], stop, after=2)
    real = passes.__call__

    def stepping(c: Config, s: StopToken) -> Report:
        report = real(c, s)
        if len(passes.calls) == 1:
            wall.step(step)  # during the first pass
        return report

    lp, _health, _ = loop(config(tmp_path, interval=0.3), passes, stop)
    lp.run_pass = stepping
    guard = threading.Timer(5, stop.set, args=(15,))  # ends the loop if the pass never comes
    guard.start()
    try:
        lp.run()
    finally:
        guard.cancel()
    assert len(passes.calls) == 2, "the second pass never started"
    assert 0.25 <= passes.calls[1] - passes.calls[0] < 1.5


def test_noop_passes_in_run_are_debug_with_a_periodic_info_summary() -> None:
    from gcs_model_sync.cli.passlog import NoopSummary, log_summary

    now = [0.0]
    noops = NoopSummary(every=600, clock=lambda: now[0])
    noop = Report(plan=Plan(in_sync=("m/1",)))
    changed = Report(plan=Plan(), published=["m/2"])

    def levels(report: Report) -> list[tuple[int, str]]:
        with Records().attached() as seen:
            log_summary(report, quiet=noops.quiet(report))
        return [(r.levelno, r.event) for r in seen.records if r.levelno >= logging.INFO]  # type: ignore[attr-defined]

    assert levels(noop) == [(logging.INFO, "pass_done")]  # the first pass of the process
    for _ in range(5):
        now[0] += 60
        assert levels(noop) == []  # pass_done at DEBUG
    assert levels(changed) == [(logging.INFO, "pass_done")]
    now[0] += 599
    assert levels(noop) == []
    now[0] += 1
    with Records().attached() as seen:
        log_summary(noop, quiet=noops.quiet(noop))
    summary = [r for r in seen.records if r.levelno == logging.INFO]
    assert [r.event for r in summary] == ["noop_summary"]  # type: ignore[attr-defined]
    assert summary[0].getMessage().startswith("2 no-op passes in the last 10 min, last listing at")
    assert summary[0].fields["passes"] == 2  # type: ignore[attr-defined]
    debug = [r.event for r in seen.records if r.levelno == logging.DEBUG]  # type: ignore[attr-defined]
    assert "pass_done" in debug
    now[0] += 60
    assert levels(noop) == []  # the count starts again
    failed_report = Report(plan=Plan(), failures=[Failure("m", "m/1", "boom")])
    assert levels(failed_report) == [(logging.ERROR, "pass_done")]


def test_the_first_good_pass_after_failures_says_at_info_that_it_recovered(
    tmp_path: Path,
) -> None:
    stop = StopToken()
    script: list[object] = [Report(), failed(), LockBusy("busy"), failed(), Report(), Report()]
    passes = Passes(script, stop, after=6)
    lp, _health, _metrics = loop(config(tmp_path, interval=0.02), passes, stop)

    with Records().attached() as seen:
        assert lp.run() == EXIT_OK

    recovered = [r for r in seen.records if getattr(r, "event", "") == "recovered"]
    assert [(r.levelno, r.getMessage()) for r in recovered] == [
        (logging.INFO, "recovered: this pass succeeded after 3 failed passes")
    ]


def test_other_sources_pass_in_turn_and_one_failing_never_ends_the_loop(tmp_path: Path) -> None:
    stop = StopToken()
    cfg = config(tmp_path, interval=0.01, max_failures=2)
    good = Passes([], stop, after=4)
    bad = Passes([failed()] * 10, stop)
    order: list[str] = []

    def tagged(name: str, fn: Passes) -> Callable[[Config, StopToken], Report]:
        def run(c: Config, s: StopToken) -> Report:
            order.append(name)
            return fn(c, s)

        return run

    first = Loop(cfg, stop, tagged("a", good), Health(60), Metrics(), "a")
    second = Loop(cfg, stop, tagged("b", bad), Health(60), Metrics(), "b")
    assert first.along([second]).run() == EXIT_OK  # b failing 3 times never gave up
    assert order[:6] == ["a", "b", "a", "b", "a", "b"]
    assert second.consecutive_failures >= 3
    assert first.consecutive_failures == 0
    assert second.metrics.consecutive_failures._value.get() >= 3
    assert first.metrics.consecutive_failures._value.get() == 0


def test_max_failures_ends_the_loop_once_every_source_has_failed_enough(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stop = StopToken()
    cfg = config(tmp_path, interval=0.01, max_failures=2)
    a = Loop(cfg, stop, Passes([failed()] * 5, stop), Health(60), Metrics(), "a")
    b = Loop(cfg, stop, Passes([Report(), failed(), failed()], stop), Health(60), Metrics(), "b")
    with caplog.at_level(logging.ERROR, logger="gcs_model_sync"):
        assert a.along([b]).run() == EXIT_FAILED
    assert (a.passes, b.passes) == (3, 3)  # b's success reset its count: one more tick
    assert "2 consecutive failed passes of every source (--max-failures 2)" in caplog.text
