"""What each command does, as plain functions from a Config to an exit code. What they print
is views.py's rows rendered by render.py; what they log is passlog.py's."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from gcs_model_sync import logs
from gcs_model_sync.cli import progress, render
from gcs_model_sync.cli.passlog import NoopSummary, log_start, log_summary, log_waiting
from gcs_model_sync.cli.views import Planned, model_status, plan_rows
from gcs_model_sync.config import Config
from gcs_model_sync.engine import sync_once
from gcs_model_sync.errors import ConfigError, Interrupted, exit_code, exit_now
from gcs_model_sync.install import verify
from gcs_model_sync.logs import event
from gcs_model_sync.phases.dest import check_dest
from gcs_model_sync.phases.snapshot import Snapshot, inspect
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.serve.hooks import hook_for


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


def once(config: Config) -> int:
    check_commands(config)
    check_dest(config.dest)
    logs.setup(config.log_format, config.verbosity)
    log_start("once", config)
    watch = progress.Progress if progress.wanted(config.log_format, config.verbosity) else None
    with stop_on_signals() as stop:
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


def run(config: Config) -> int:
    """The sidecar: passes forever, until a signal (exit 0) or --max-failures (exit 1)."""
    from gcs_model_sync.serve.daemon import Loop
    from gcs_model_sync.serve.health import Health, Server
    from gcs_model_sync.serve.metrics import Metrics

    check_commands(config)
    check_dest(config.dest)
    logs.setup(config.log_format, config.verbosity)
    log_start("run", config)
    metrics, health = Metrics(), Health(config.stuck_after)
    server = None
    if config.http_port is not None:
        try:
            server = Server(config.http_host, config.http_port, health, metrics).start()
        except OSError as exc:
            raise ConfigError(f"--http-port {config.http_port}: {exc.strerror}") from exc
        event(logging.INFO, "http", f"serving /healthz /readyz /metrics on port {server.port}")
    watch = progress.Progress if progress.wanted(config.log_format, config.verbosity) else None
    told: dict[str, str] = {}
    noops = NoopSummary()

    def one(c: Config, stop: StopToken) -> Report:
        report = sync_once(c, stop, watch)
        log_waiting(report, told)
        log_summary(report, quiet=noops.quiet(report))
        return report

    with stop_on_signals() as stop:
        code = Loop(config, stop, one, health, metrics).run()
    if server:
        server.stop()
    exit_now(code)  # a transfer thread may still sit in a socket read


def plan(config: Config) -> int:
    snap, planned = _planned(config)
    print(render.plan_output(config, snap.plan, planned))
    return planned.code


def status(config: Config) -> int:
    """Exit 3 exactly when `plan` does (a guard refuses this pass's deletions); else 0."""
    snap, planned = _planned(config)
    print(render.status_output(config, model_status(snap, planned), planned))
    return exit_code(guarded=planned.guarded)


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
