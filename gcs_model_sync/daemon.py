"""The sidecar loop: a pass every --interval seconds, driven by `schedule`.

One thread runs passes, so they never overlap; an exception in a pass is logged and counted
and the next pass runs as usual; the wait between passes ends at once on SIGTERM/SIGINT.
Intervals are measured between pass starts, plus an optional random jitter, on the monotonic
clock: `schedule` holds the job, but its own timing reads the wall clock, which NTP or an
admin can step (back an hour: the next pass an hour late, while /healthz stays green).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import traceback
from collections.abc import Callable

import schedule

from gcs_model_sync.config import Config
from gcs_model_sync.errors import EXIT_FAILED, EXIT_OK, Interrupted, SyncError
from gcs_model_sync.health import Health
from gcs_model_sync.hooks import Hook
from gcs_model_sync.layout import split_id
from gcs_model_sync.logs import event, log
from gcs_model_sync.metrics import Metrics
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken

PassFn = Callable[[Config, StopToken], Report]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


class Loop:
    def __init__(
        self,
        config: Config,
        stop: StopToken,
        run_pass: PassFn,
        health: Health,
        metrics: Metrics,
        hook: Hook | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.stop = stop
        self.run_pass = run_pass
        self.health = health
        self.metrics = metrics
        self.hook = hook
        self.rng = rng or random.Random()
        self.clock = clock  # times every wait; never the wall clock
        self.consecutive_failures = 0
        self.passes = 0
        self.models: set[str] = set()
        self.on_disk: frozenset[str] = frozenset()  # version ids, as of the last pass
        self._started: float | None = None  # on self.clock
        self._give_up = False

    def run(self) -> int:
        """Loop until a signal (exit 0) or --max-failures consecutive failures (exit 1)."""
        scheduler = schedule.Scheduler()
        # schedule counts from a pass's end in whole seconds, on the wall clock: the loop
        # keeps the next start as a monotonic deadline, waits for it, then hands schedule a
        # job that is due. job.next_run only tells the registry (wall time) when that is.
        job = scheduler.every(max(1, int(self.config.interval))).seconds.do(self.one_pass)
        due = self.clock()  # the first pass starts at once
        try:
            while not self.stop.is_set():
                left = due - self.clock()
                job.next_run = dt.datetime.now() + dt.timedelta(seconds=max(left, 0.0))
                if left > 0:
                    self.stop.wait(left)
                    continue
                scheduler.run_pending()  # due now (a step back just now: the next turn runs it)
                if self._give_up:
                    return EXIT_FAILED
                if self._started is not None:
                    due = self._next_start(self._started)
                    self._started = None
        except Interrupted:
            pass
        finally:
            self.health.alive = False
        event(logging.INFO, "stopped", f"stopping after {self.passes} passes")
        return EXIT_OK

    def _next_start(self, started: float) -> float:
        """The next pass's start on self.clock, from this one's start on self.clock."""
        wait = self.config.interval * (1 + self.config.jitter * self.rng.random())
        return max(started + wait, self.clock())

    def one_pass(self) -> None:
        self._started = self.clock()
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
        limit = self.config.max_failures
        if limit and self.consecutive_failures >= limit:
            event(
                logging.ERROR,
                "giving_up",
                f"{self.consecutive_failures} consecutive failed passes (--max-failures {limit})",
            )
            self._give_up = True

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
