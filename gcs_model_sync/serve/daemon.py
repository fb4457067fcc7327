"""The sidecar loop: a pass every --interval seconds, run by a `schedule` Scheduler.

One thread runs passes, so they never overlap; an exception in a pass is logged and counted
and the next pass runs as usual; the wait between passes ends at once on SIGTERM/SIGINT.
The pass is a `schedule` job (Every) whose due time is kept on the monotonic clock: intervals
are measured between pass starts, plus an optional random jitter. schedule's own timing reads
the wall clock, which NTP or an admin can step (back an hour: the next pass an hour late,
while /healthz stays green), and counts from a pass's end.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import schedule

from gcs_model_sync.config import Config
from gcs_model_sync.errors import EXIT_FAILED, EXIT_OK, Interrupted, SyncError
from gcs_model_sync.layout import split_id
from gcs_model_sync.logs import about, event, log
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.serve.health import Health
from gcs_model_sync.serve.hooks import hook_for
from gcs_model_sync.serve.metrics import Metrics

PassFn = Callable[[Config, StopToken], Report]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


class Every(schedule.Job):
    """A job due every `interval` seconds from the start of its last run, plus up to `jitter`
    of the interval at random; the first run is due at once. Due times are on `clock`
    (monotonic); `next_run` tells schedule's registry the same instant in wall time."""

    def __init__(
        self,
        interval: float,
        jitter: float,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(1)
        self.unit = "seconds"
        self.period, self.jitter = interval, jitter
        self.rng = rng or random.Random()
        self.clock = clock
        self.due = clock()
        self.started: float | None = None  # on clock: the start of the run in progress

    @property
    def should_run(self) -> bool:
        return self.clock() >= self.due

    def run(self) -> Any:
        self.started = self.clock()
        return super().run()  # type: ignore[no-untyped-call]  # the job, then _schedule_next_run

    def _schedule_next_run(self) -> None:
        if self.started is not None:
            self.due = self.next_start(self.started)
        self.next_run = dt.datetime.now() + dt.timedelta(seconds=self.left())

    def next_start(self, started: float) -> float:
        """The next run's start on the clock, from this one's start on the clock."""
        wait = self.period * (1 + self.jitter * self.rng.random())
        return max(started + wait, self.clock())

    def left(self) -> float:
        """Seconds until the job is due (0: due now)."""
        return max(self.due - self.clock(), 0.0)


class Loop:
    """One source's passes: its probes' state, metrics, hook and failures in a row. `run`
    schedules them, and those of the loops it goes `along` with, each in turn."""

    def __init__(
        self,
        config: Config,
        stop: StopToken,
        run_pass: PassFn,
        health: Health,
        metrics: Metrics,
        name: str = "",
    ) -> None:
        self.config = config
        self.stop = stop
        self.run_pass = run_pass
        self.health = health
        self.metrics = metrics
        self.name = name  # the source's, in its log lines; "" for a single source
        self.hook = hook_for(config)
        self.consecutive_failures = 0
        self.passes = 0
        self.models: set[str] = set()
        self.on_disk: frozenset[str] = frozenset()  # version ids, as of the last pass
        self.others: list[Loop] = []

    def along(self, others: Sequence[Loop]) -> Loop:
        """Run `others` in this loop, each pass after this one's: one schedule, one thread,
        so passes never overlap and share the process's --connections and --bwlimit."""
        self.others = list(others)
        return self

    def run(self) -> int:
        """Loop until a signal (exit 0) or --max-failures consecutive failures of every
        source (exit 1): a source that keeps failing never stops the others."""
        loops = [self, *self.others]
        scheduler = schedule.Scheduler()
        job = Every(self.config.interval, self.config.jitter)
        job.scheduler = scheduler
        job.do(self.tick)
        try:
            while not self.stop.is_set():
                scheduler.run_pending()
                if all(lp.failed_enough for lp in loops):
                    self._giving_up(loops)
                    return EXIT_FAILED
                self.stop.wait(job.left())
        except Interrupted:
            pass
        finally:
            for lp in loops:
                lp.health.alive = False
        event(logging.INFO, "stopped", f"stopping after {self.passes} passes")
        return EXIT_OK

    def tick(self) -> None:
        """Each source's pass, in turn; a stop ends the tick between two."""
        for lp in [self, *self.others]:
            if self.stop.is_set():
                break
            with about(lp.name):
                lp.one_pass()

    @property
    def failed_enough(self) -> bool:
        limit = self.config.max_failures
        return bool(limit) and self.consecutive_failures >= limit

    def _giving_up(self, loops: list[Loop]) -> None:
        limit = self.config.max_failures
        n = min(lp.consecutive_failures for lp in loops)
        every = " of every source" if self.others else ""
        event(
            logging.ERROR,
            "giving_up",
            f"{n} consecutive failed passes{every} (--max-failures {limit})",
        )

    def one_pass(self) -> None:
        self.health.pass_begins()
        ok = False
        report: Report | None = None
        try:
            report = self.run_pass(self.config, self.stop)
            ok = report.exit_code == EXIT_OK
            self._after(report)
        except Interrupted:
            raise
        except SyncError as exc:
            event(logging.ERROR, "pass_failed", str(exc), error=str(exc))
            self.metrics.passes.labels("error").inc()
        except Exception as exc:  # one bad pass must never end the sidecar
            reason = f"{type(exc).__name__}: {_one_line(exc)}"
            more = "" if self.config.verbosity >= 1 else " (-v logs the traceback)"
            event(
                logging.ERROR,
                "pass_failed",
                f"pass failed with an internal error: {reason}; the loop goes on{more}",
                error=reason,
            )
            self._traceback(exc)
            self.metrics.passes.labels("error").inc()
        finally:
            self.passes += 1
            listed = report is not None and report.plan is not None
            self.health.pass_ends(ok, listed=listed, versions=self._versions_on_disk(report))
        if ok and self.consecutive_failures:
            self._recovered()
        self.consecutive_failures = 0 if ok else self.consecutive_failures + 1
        self.metrics.consecutive_failures.set(self.consecutive_failures)

    def _recovered(self) -> None:
        """Said at INFO even when the pass changed nothing (its own summary is then DEBUG):
        whoever read the failures needs to read that they ended."""
        n = self.consecutive_failures
        event(
            logging.INFO,
            "recovered",
            f"recovered: this pass succeeded after {n} failed pass{'es' if n > 1 else ''}",
            failed_passes=n,
        )

    def _versions_on_disk(self, report: Report | None) -> int:
        """The engine's count after a pass that listed the bucket. After one that did not
        return it (an outage, a bug), the folders known before that are still there: a count
        that never invents a version, and drops one removed by hand."""
        if report is not None and report.on_disk is not None:
            self.on_disk = report.on_disk
        else:
            dest = self.config.dest
            self.on_disk = frozenset(vid for vid in self.on_disk if (dest / vid).is_dir())
        self.metrics.versions_on_disk.set(len(self.on_disk))
        return len(self.on_disk)

    def _traceback(self, exc: BaseException) -> None:
        """At -v, where a failed pass came from: its own log record (the text format writes
        a record's message only, so the traceback is the message)."""
        if self.config.verbosity >= 1:
            text = "".join(traceback.format_exception(exc)).rstrip()
            log.debug("%s", text, extra={"event": "traceback", "fields": {}})

    def _after(self, report: Report) -> None:
        if report.plan:
            self.models |= set(report.plan.remote_models)
        self.models |= {split_id(vid)[0] for vid in report.published + report.pruned}
        self.metrics.observe(report, self.config.dest, self.models)
        if self.hook:
            self.hook.add(
                report.published, report.pruned, report.files_written + report.files_removed
            )
            if self.hook.pending:
                self.metrics.hooks.labels(self.hook.run()).inc()
