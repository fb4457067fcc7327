"""What each command does, as plain functions from the sources (sources.py: one Config each)
to an exit code; several sources run in turn, each one's failure its own. What they print is
views.py's rows rendered by render.py; what they log is passlog.py's."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gcs_model_sync import logs
from gcs_model_sync.cli import progress, render
from gcs_model_sync.cli.passlog import NoopSummary, log_start, log_summary, log_waiting
from gcs_model_sync.cli.views import Planned, model_status, plan_rows
from gcs_model_sync.config import Config
from gcs_model_sync.engine import sync_once
from gcs_model_sync.errors import (
    ConfigError,
    Interrupted,
    SyncError,
    exit_code,
    exit_now,
    os_error,
    worst,
)
from gcs_model_sync.install import verify
from gcs_model_sync.local import lock
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Watch
from gcs_model_sync.phases.dest import check_dest, dest_error
from gcs_model_sync.phases.snapshot import Snapshot, inspect
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.serve.hooks import hook_for
from gcs_model_sync.sources import Sources


@contextmanager
def stop_on_signals() -> Iterator[StopToken]:
    """SIGTERM/SIGINT ask the pass to stop at its next safe point instead of killing it."""
    stop = StopToken()
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, lambda signum, _frame: stop.set(signum))
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_commands(config: Config) -> None:
    """A --verify or --on-change that cannot run, a --signature-key that cannot verify, or a
    --server URL that cannot be asked, is a usage error before any pass (not a refusal of
    every version, not a failure after publishing)."""
    if config.verify:
        verify.argv_of(config.verify)
    if config.on_change:
        verify.argv_of(config.on_change, "--on-change")
    if config.signature_key:
        from gcs_model_sync.install.signature import check_key

        check_key(config.signature_key)
    if config.server:
        from gcs_model_sync.servers.server import Kind, ModelServer

        ModelServer(config.server, Kind(config.server_kind))


def once(sources: Sources) -> int:
    """One pass of each source in turn; the exit code is the worst of theirs."""
    first = _checked(sources)
    watch = progress.Progress if progress.wanted(first.log_format, first.verbosity) else None
    codes: list[int] = []
    with stop_on_signals() as stop, _one_lock(sources, stop):
        for name, config in sources:
            with logs.about(name), _own_failure(sources, codes):
                codes.append(_once(config, stop, watch))
    return worst(codes)


def _once(config: Config, stop: StopToken, watch: Watch | None) -> int:
    log_start("once", config)
    try:
        report = sync_once(config, stop, watch)
    except Interrupted as exc:
        event(logging.WARNING, "interrupted", f"{exc}; no partial version is visible")
        exit_now(exit_code(exc))
    log_waiting(report, {})
    log_summary(report)
    hook = hook_for(config)
    hook_failed = False
    if hook and report.changed:
        hook.add(report.published, report.pruned, report.files_written + report.files_removed)
        hook_failed = hook.run() != "success"
    return exit_code(guarded=bool(report.guard), failed=bool(report.failures) or hook_failed)


def run(sources: Sources) -> int:
    """The sidecar: passes forever, until a signal (exit 0) or --max-failures (exit 1); each
    source's pass in turn, each with its own probes' state, metrics and hook."""
    from gcs_model_sync.serve.daemon import Loop
    from gcs_model_sync.serve.health import Each, Health, Server
    from gcs_model_sync.serve.metrics import Labelled, Metrics

    config = _checked(sources)
    for name, c in sources:
        with logs.about(name):
            log_start("run", c)
    watch = progress.Progress if progress.wanted(config.log_format, config.verbosity) else None
    with stop_on_signals() as stop, _one_lock(sources, stop):
        loops = [
            Loop(c, stop, _pass_fn(watch), Health(c.stuck_after), Metrics(), name)
            for name, c in sources
        ]
        if sources.many:
            health: Health | Each = Each({lp.name: lp.health for lp in loops})
            metrics: Metrics | Labelled = Labelled({lp.name: lp.metrics for lp in loops})
        else:
            health, metrics = loops[0].health, loops[0].metrics
        server = None
        if config.http_port is not None:
            try:
                server = Server(config.http_host, config.http_port, health, metrics).start()
            except OSError as exc:
                raise ConfigError(f"--http-port {config.http_port}: {exc.strerror}") from exc
            event(logging.INFO, "http", f"serving /healthz /readyz /metrics on port {server.port}")
        code = loops[0].along(loops[1:]).run()
    if server:
        server.stop()
    exit_now(code)  # a transfer thread may still sit in a socket read


def _pass_fn(watch: Watch | None) -> Callable[[Config, StopToken], Report]:
    """One source's pass in `run`, with what its log remembers between passes."""
    told: dict[str, str] = {}
    noops = NoopSummary()

    def one(c: Config, stop: StopToken) -> Report:
        report = sync_once(c, stop, watch)
        log_waiting(report, told)
        log_summary(report, quiet=noops.quiet(report))
        return report

    return one


_Told = tuple[dict[str, Any], str, int]  # one source's report: its document, text, exit code


def plan(sources: Sources) -> int:
    def one(config: Config) -> _Told:
        snap, planned = _planned(config)
        doc = render.plan_doc(config, snap.plan, planned)
        return doc, render.plan_output(config, snap.plan, planned), planned.code

    return _shown(sources, one)


def status(sources: Sources) -> int:
    """Exit 3 exactly when `plan` does (a guard refuses this pass's deletions); else 0."""

    def one(config: Config) -> _Told:
        snap, planned = _planned(config)
        models = model_status(snap, planned)
        doc = render.status_doc(config, models, planned)
        text = render.status_output(config, models, planned)
        return doc, text, exit_code(guarded=planned.guarded)

    return _shown(sources, one)


def _shown(sources: Sources, report: Callable[[Config], _Told]) -> int:
    """Print each source's report, under its name when there are several; a source that could
    not be reported says why. The exit code is the worst of theirs."""
    shown: list[render.Shown] = []
    codes: list[int] = []
    for name, config in sources:
        with logs.about(name), _own_failure(sources, codes) as failed:
            doc, text, code = report(config)
            shown.append(render.Shown(name, config, doc, text))
            codes.append(code)
        shown += [render.failed(name, config, message) for message in failed]
    print(render.each(sources.first, shown) if sources.many else shown[0].text)
    return worst(codes)


def _checked(sources: Sources) -> Config:
    """Every source's commands and dest checked before any pass; logging set up. The
    process-wide settings are returned."""
    for config in sources.configs:
        check_commands(config)
        check_dest(config.dest)
    first = sources.first
    logs.setup(first.log_format, first.verbosity)
    return first


@contextmanager
def _one_lock(sources: Sources, stop: StopToken) -> Iterator[None]:
    """Several sources: the lock on the --dest they share, held while the command runs, so
    a second process on the same file waits or leaves (each pass still takes its own)."""
    if sources.base is None:
        yield
        return
    paths = Paths(sources.base)
    with contextlib.ExitStack() as held:
        try:
            paths.ensure()
            held.enter_context(lock.hold(paths.lock_file, sources.first.lock_timeout, stop))
        except OSError as exc:
            raise dest_error(sources.base, exc) from exc
        yield


@contextmanager
def _own_failure(sources: Sources, codes: list[int]) -> Iterator[list[str]]:
    """With several sources, what ends one source's command (its listing, its lock, its
    dest) is that source's failure: logged, its exit code kept (the message put in the list
    yielded), and the next source goes on. A single source's error ends the command."""
    failed: list[str] = []
    try:
        yield failed
    except (SyncError, OSError) as exc:
        if not sources.many or isinstance(exc, Interrupted):
            raise
        message = str(exc) if isinstance(exc, SyncError) else os_error(exc)
        event(logging.ERROR, "source_failed", f"{message}; the other sources go on", error=message)
        codes.append(exit_code(exc))
        failed.append(message)


def _planned(config: Config) -> tuple[Snapshot, Planned]:
    """What `plan` and `status` both show: the listing planned, read-only, row by row."""
    check_commands(config)
    logs.setup(config.log_format, config.verbosity)
    with stop_on_signals() as stop:
        snap = inspect(config, stop)
    return snap, plan_rows(config, snap, _served(config, snap) if config.server else None)


def _served(config: Config, snap: Snapshot) -> dict[str, int | None]:
    """What the model server serves now, asked read-only (no load, no waiting)."""
    from gcs_model_sync.install import rollout

    with stop_on_signals() as stop:
        return rollout.ask(config, snap.local.on_disk, stop)
