"""The sidecar loop: a pass every --interval seconds, driven by `schedule`.

One thread runs passes, so they never overlap; an exception in a pass is logged and counted
and the next pass runs as usual; the wait between passes ends at once on SIGTERM/SIGINT.
Intervals are measured between pass starts, plus an optional random jitter.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import traceback
from collections.abc import Callable

import schedule

from gcs_model_sync.config import Config
from gcs_model_sync.engine import Report
from gcs_model_sync.errors import EXIT_FAILED, EXIT_OK, Interrupted, SyncError
from gcs_model_sync.health import Health
from gcs_model_sync.hooks import Hook
from gcs_model_sync.logs import event, log
from gcs_model_sync.metrics import Metrics
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
    ) -> None:
        self.config = config
        self.stop = stop
        self.run_pass = run_pass
        self.health = health
        self.metrics = metrics
        self.hook = hook
        self.rng = rng or random.Random()
        self.consecutive_failures = 0
        self.passes = 0
        self.models: set[str] = set()
        self.on_disk: frozenset[str] = frozenset()  # version ids, as of the last pass
        self._started: dt.datetime | None = None
        self._give_up = False

    def run(self) -> int:
        """Loop until a signal (exit 0) or --max-failures consecutive failures (exit 1)."""
        scheduler = schedule.Scheduler()
        # schedule counts from a pass's end in whole seconds; we set next_run from its start.
        job = scheduler.every(max(1, int(self.config.interval))).seconds.do(self.one_pass)
        job.next_run = dt.datetime.now()  # the first pass starts at once
        try:
            while not self.stop.is_set():
                scheduler.run_pending()
                if self._give_up:
                    return EXIT_FAILED
                if self._started is not None:
                    job.next_run = self._next_start(self._started)
                    self._started = None
                self.stop.wait(max(0.0, scheduler.idle_seconds or 0.0))
        except Interrupted:
            pass
        finally:
            self.health.alive = False
        event(logging.INFO, "stopped", f"stopping after {self.passes} passes")
        return EXIT_OK

    def _next_start(self, started: dt.datetime) -> dt.datetime:
        wait = self.config.interval * (1 + self.config.jitter * self.rng.random())
        return max(started + dt.timedelta(seconds=wait), dt.datetime.now())

    def one_pass(self) -> None:
        self._started = dt.datetime.now()
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
        self.models |= {vid.rpartition("/")[0] for vid in report.published + report.pruned}
        self.metrics.observe(report, self.config.dest, self.models)
        if self.hook:
            self.hook.add(report.published, report.pruned)
            if self.hook.pending:
                self.metrics.hooks.labels(self.hook.run()).inc()
