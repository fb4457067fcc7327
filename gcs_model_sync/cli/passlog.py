"""The log lines of a pass: the start line, why versions wait, the summary, and at -v the
plan carried out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gcs_model_sync import __version__, logs
from gcs_model_sync.cli.render import start_fields
from gcs_model_sync.config import Config
from gcs_model_sync.errors import EXIT_OK
from gcs_model_sync.logs import event
from gcs_model_sync.plan.completeness import Wait
from gcs_model_sync.report import Report
from gcs_model_sync.units import human


def log_start(command: str, config: Config) -> None:
    """The first line of a command: what runs, from where to where, and its whole config."""
    event(
        logging.INFO,
        "start",
        f"gcs-model-sync {__version__} {command} {config.source} -> {config.dest}",
        version=__version__,
        command=command,
        config=start_fields(config),
    )


def log_waiting(report: Report, told: dict[str, str]) -> None:
    """Say once why each version waits: not every pass while an upload takes its time.

    `told` maps version id -> what was said; it forgets versions that stopped waiting, so a
    version that waits again later is reported again.
    """
    waiting = report.plan.waiting if report.plan else ()
    now = {w.id: f"{w.kind}:{w.version.fingerprint}" for w in waiting}
    for w in waiting:
        if told.get(w.id) == now[w.id]:
            continue
        v = w.version
        kept = "; the installed version stays" if w.installed else ""
        event(
            logging.WARNING if w.kind is Wait.SHRUNK else logging.INFO,
            "version_waiting",
            f"{v.id} waits: {w.reason}{kept}",
            model=v.model,
            version=v.version,
            reason=w.reason,
            kind=str(w.kind),
        )
    told.clear()
    told.update(now)


class NoopSummary:
    """`run` logs a pass that changed nothing at DEBUG, except the first pass of the process;
    instead, once every `every` seconds, one INFO line counts the no-op passes since."""

    def __init__(self, every: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self.first = True
        self.count = 0
        self.since = clock()

    def quiet(self, report: Report) -> bool:
        """Whether this pass's summary goes at DEBUG; says the periodic summary when due."""
        first, self.first = self.first, False
        now = self.clock()
        if report.outcome != "noop" or report.exit_code != EXIT_OK or first:
            self.count, self.since = 0, now
            return False
        self.count += 1
        if now - self.since >= self.every:
            plan = report.plan
            in_sync = len(plan.in_sync) if plan else 0
            listed = time.strftime("%H:%M:%SZ", time.gmtime())
            minutes = (now - self.since) / 60
            event(
                logging.INFO,
                "noop_summary",
                f"{self.count} no-op passes in the last {minutes:.0f} min, last listing at "
                f"{listed}: {in_sync} in sync, nothing to change",
                passes=self.count,
                seconds=round(now - self.since, 1),
                in_sync=in_sync,
            )
            self.count, self.since = 0, now
        return True


def log_details(report: Report) -> None:
    """What -v adds after a pass: the plan it carried out, and the requests it made."""
    if not logs.log.isEnabledFor(logging.DEBUG):  # every pass of `run`: build nothing unasked
        return
    plan = report.plan
    if plan is not None:
        if plan.in_sync:
            event(logging.DEBUG, "in_sync", f"in sync: {', '.join(plan.in_sync)}")
        for i in plan.installs:
            v = i.version
            action = "replace" if i.replaces else "fetch"
            event(
                logging.DEBUG,
                "planned",
                f"planned: {action} {v.id} ({v.form}, {human(v.size)}, "
                f"{len(v.entries)} object(s), {i.reason})",
                version=v.id,
                action=action,
            )
        for pr in plan.prunes:
            m = pr.managed
            event(logging.DEBUG, "planned", f"planned: prune {m.id} ({pr.reason})", version=m.id)
    event(
        logging.DEBUG,
        "requests",
        f"{report.list_requests} list request(s), {report.object_reads} object read(s), "
        f"at most {report.peak_connections} at once",
    )


def log_summary(report: Report, quiet: bool = False) -> None:
    """The pass's one summary line: INFO (ERROR when it failed), DEBUG when `quiet`."""
    plan = report.plan
    log_details(report)
    level = logging.INFO if report.exit_code == EXIT_OK else logging.ERROR
    if quiet and level == logging.INFO:
        level = logging.DEBUG
    event(
        level,
        "pass_done",
        f"pass {report.outcome}: {len(report.published)} published, {len(report.pruned)} pruned, "
        f"{len(plan.in_sync) if plan else 0} in sync, {len(plan.waiting) if plan else 0} "
        f"waiting, {len(report.failures)} failed, {_files_done(report)}"
        f"{human(report.bytes_downloaded)} read in {report.seconds:.2f}s",
        outcome=report.outcome,
        published=report.published,
        pruned=report.pruned,
        failed=[f.subject for f in report.failures],
        files_written=report.files_written,
        files_removed=report.files_removed,
        waiting=[w.id for w in plan.waiting] if plan else [],
        bytes=report.bytes_downloaded,
        seconds=round(report.seconds, 3),
        list_requests=report.list_requests,
        object_reads=report.object_reads,
        peak_connections=report.peak_connections,
    )


def _files_done(report: Report) -> str:
    """The model files a pass changed, for its summary line (nothing without any)."""
    n = len(report.files_written) + len(report.files_removed)
    return f"{n} model file(s) changed, " if n else ""
