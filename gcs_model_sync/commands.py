"""What each command does, as plain functions from a Config to an exit code."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs_model_sync import __version__, deletions, logs, partials, progress, verify
from gcs_model_sync.complete import Wait
from gcs_model_sync.config import Config
from gcs_model_sync.engine import Report, Snapshot, check_dest, inspect, sync_once
from gcs_model_sync.errors import (
    EXIT_FAILED,
    EXIT_GUARD,
    EXIT_OK,
    ConfigError,
    Interrupted,
    exit_now,
)
from gcs_model_sync.hooks import Hook
from gcs_model_sync.layout import version_id
from gcs_model_sync.local import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.plan import Install, Plan
from gcs_model_sync.redaction import redact
from gcs_model_sync.report import install_state, rejected
from gcs_model_sync.retry import StopToken


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
    """A --verify or --on-change that cannot run, or a --server URL that cannot be asked, is a
    usage error before any pass (not a refusal of every version, not a failure after
    publishing)."""
    if config.verify:
        verify.argv_of(config.verify)
    if config.on_change:
        verify.argv_of(config.on_change, "--on-change")
    if config.server:
        from gcs_model_sync.server import Kind, ModelServer

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
            exit_now(exc.exit_code)
    log_waiting(report, {})
    log_summary(report)
    hook = make_hook(config)
    if hook and report.changed:
        hook.add(report.published, report.pruned, report.files_written + report.files_removed)
        if hook.run() != "success" and report.exit_code == EXIT_OK:
            return EXIT_FAILED
    return report.exit_code


def run(config: Config) -> int:
    """The sidecar: passes forever, until a signal (exit 0) or --max-failures (exit 1)."""
    from gcs_model_sync.daemon import Loop
    from gcs_model_sync.health import Health, Server
    from gcs_model_sync.metrics import Metrics

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
        code = Loop(config, stop, one, health, metrics, make_hook(config)).run()
    if server:
        server.stop()
    exit_now(code)  # a transfer thread may still sit in a socket read


def make_hook(config: Config) -> Hook | None:
    if not config.on_change:
        return None
    env = {"GCS_MODEL_SYNC_DEST": str(config.dest), "GCS_MODEL_SYNC_SOURCE": str(config.source)}
    return Hook(config.on_change, config.hook_timeout, env)


def log_start(command: str, config: Config) -> None:
    # URLs (--endpoint, --server) and commands (--on-change, --verify) may carry credentials
    fields = {k: _json_value(v) for k, v in _config_items(config)}
    fields = {k: redact(v) if isinstance(v, str) else v for k, v in fields.items()}
    event(
        logging.INFO,
        "start",
        f"gcs-model-sync {__version__} {command} {config.source} -> {config.dest}",
        version=__version__,
        command=command,
        config=fields,
    )


def _config_items(config: Config) -> Iterator[tuple[str, Any]]:
    for name in config.__dataclass_fields__:
        yield name, getattr(config, name)


def _json_value(value: Any) -> Any:
    """Numbers, booleans and None keep their JSON types; paths and sources become strings."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


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
                f"planned: {action} {v.id} ({v.form}, {progress.human(v.size)}, "
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
        f"{progress.human(report.bytes_downloaded)} read in {report.seconds:.2f}s",
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


@dataclass(frozen=True, slots=True)
class Planned:
    """What `plan` prints and `status` groups by model: one row per action (JSON-ready), the
    exit code `plan` gives, and the guard that refuses this pass's deletions (None: none)."""

    rows: list[dict[str, Any]]
    code: int
    guard: str | None
    guard_lines: list[str]
    decision: deletions.Decision


def plan_rows(
    config: Config, snap: Snapshot, served: dict[str, int | None] | None = None
) -> Planned:
    """Every row `once` would act on, with structured fields: `version` (the id, `m/3`),
    `model`, `number`, `action`, `state` (installs: new, failed, resuming, replace,
    reinstall), `reason`, sizes (`download_bytes`, `disk_bytes`, `resume_bytes`)."""
    p = snap.plan
    rows = [_install_row(i, snap, Paths(config.dest).partial) for i in p.installs]
    linked = {f.model for f in snap.refused}
    for i in p.held:
        why = (
            "its model's folder is a symbolic link"
            if i.version.model in linked
            else "a version number of this model is spelled two ways"
        )
        rows.append(_row("hold", i.version.id, f"{i.reason}; kept back: {why}", state="held"))
    for w in p.waiting:
        kept = " (installed version stays)" if w.installed else ""
        rows.append(_row("wait", w.id, f"{w.reason}{kept}", state=str(w.kind)))
    # Exactly what `once` deletes if every install succeeds: the rejections are the only
    # failures known before installing; with --server, what the server serves now.
    decision = deletions.decide(p, (rejected(r) for r in p.rejections), served)
    for pr in p.prunes:
        action, reason = "prune", pr.reason
        if decision.refused:
            action = "refuse-prune"
        elif pr in decision.held:
            action, reason = "hold", f"{pr.reason}; kept: another version of this model is rejected"
        elif pr in decision.gated:
            now = (served or {}).get(pr.managed.model)
            what = "no version" if now is None else f"version {now}"
            action, reason = "hold", f"{pr.reason}; kept: the server serves {what}, none newer"
        rows.append(_row(action, pr.managed.id, reason, disk_bytes=pr.managed.bytes or None))
    rows += _file_rows(p, decision)
    for r in p.rejections:
        state = "refused" if r.refused else "rejected"
        rows.append(_row("reject", r.id, r.message, state=state))
    for f in snap.refused:  # what a symbolic link below DEST keeps `once` from doing
        number = f.version.rpartition("/")[2] if f.version else None
        row = {"action": "refuse", "version": f.version or f.model, "model": f.model}
        rows.append(row | {"number": number, "state": "link", "reason": f.message})
    for vid in p.unmanaged:
        rows.append(_row("leave", vid, "unmanaged folder, not in bucket"))
    pruned = {pr.managed.id for pr in p.prunes}
    for vid in p.outside_keep:
        if vid in pruned:  # installed: its prune row says it already
            continue
        rows.append(_row("skip", vid, f"outside --keep {config.keep}"))
    lines = [f"guard: {g}" for g in (p.guard if p.prunes else None, p.empty) if g]
    guarded = bool(p.guard and p.prunes) or bool(p.empty)
    code = EXIT_GUARD if guarded else EXIT_FAILED if p.rejections or snap.refused else EXIT_OK
    return Planned(rows, code, p.guard or p.empty, lines, decision)


def _row(action: str, vid: str, reason: str, **fields: Any) -> dict[str, Any]:
    model, _, number = vid.rpartition("/")
    return {"action": action, "version": vid, "model": model, "number": number} | {
        "state": None,
        "reason": reason,
        **fields,
    }


def _install_row(i: Install, snap: Snapshot, partial: Path) -> dict[str, Any]:
    """A fetch or replace, and what it is: new, failed last pass (why), resuming a partial
    download, a replace, or a reinstall of a folder of ours that is gone."""
    v = i.version
    resume = sum(partials.on_disk(partial, o) for o in v.objects)
    have = snap.state.versions.get(v.id)
    state = install_state(i, have.fingerprint if have else None, resume)
    reason = {
        "new": "new",
        "resuming": "resumes",
        "replace": i.reason,
        "reinstall": "installed before; its folder is gone",
    }[state]
    last = snap.state.failed.get(v.id)
    error = None
    if last is not None and last.fingerprint == v.fingerprint:
        state, error = "failed", last.message
        reason = f"failed last pass: {last.message}"
    if resume:
        reason = (
            f"{reason} with {progress.human(resume)} on disk"
            if state == "resuming"
            else (f"{reason}; resumes with {progress.human(resume)} on disk")
        )
    return _row(
        "replace" if i.replaces else "fetch",
        v.id,
        reason,
        state=state,
        form=str(v.form),
        objects=len(v.entries),
        bytes=v.size,
        download_bytes=v.size,
        disk_bytes=have.bytes or None if have and i.replaces else None,
        resume_bytes=resume,
        error=error,
    )


def _sizes(row: dict[str, Any]) -> str:
    """The sizes of a row, labelled as the `published` line labels them."""
    said = []
    if row.get("download_bytes") is not None:
        said.append(f"download {progress.human(row['download_bytes'])}")
    if disk := row.get("disk_bytes"):
        if row["action"] == "replace":  # the installed one's size: the new one's is not known
            said.append(f"replaces {progress.human(disk)} on disk")
        else:
            said.append(f"on disk {progress.human(disk)}")
    return "".join(f"{s}, " for s in said)


def plan(config: Config) -> int:
    check_commands(config)
    logs.setup(config.log_format, config.verbosity)
    with stop_on_signals() as stop:
        snap = inspect(config, stop)
    p = snap.plan
    planned = plan_rows(config, snap, _served(config, snap) if config.server else None)
    if config.output == "json":
        doc = {
            "source": str(config.source),
            "dest": str(config.dest),
            "actions": planned.rows,
            "in_sync": list(p.in_sync),
            "guard": planned.guard,
        }
        print(json.dumps(doc))
        return planned.code
    out = sys.stdout
    print(f"plan: {config.source} -> {config.dest}", file=out)
    for row in planned.rows:
        detail = f"{row['form']}, " if "form" in row else ""
        detail += f"{_sizes(row)}{row['reason']}"
        print(f"  {row['action']:<12} {row['version']:<32} {detail}", file=out)
    for line in planned.guard_lines:
        print(f"  {line}", file=out)
    n_fetch = sum(1 for i in p.installs if not i.replaces)
    files = f", {len(planned.decision.files)} model file(s) to change" if p.files else ""
    print(
        f"{n_fetch} to fetch, {len(p.installs) - n_fetch} to replace, "
        f"{len(planned.decision.prune)} to prune, {len(p.in_sync)} in sync, "
        f"{len(p.waiting)} waiting, {len(p.rejections)} rejected{files}",
        file=out,
    )
    return planned.code


def _served(config: Config, snap: Snapshot) -> dict[str, int | None]:
    """What the model server serves now, asked read-only (no load, no waiting)."""
    from gcs_model_sync import rollout

    with stop_on_signals() as stop:
        return rollout.ask(config, snap.local.on_disk, stop)


def _file_rows(p: Plan, decision: deletions.Decision) -> list[dict[str, Any]]:
    """--model-files: what `once` writes, removes, holds back and leaves alone."""
    rows: list[dict[str, Any]] = []
    for f in p.files:
        if f in decision.files:
            action = "remove-file" if f.removes else "write-file"
            rows.append(_file_row(action, f.model, f.name, f.reason))
        else:
            why = "a version of its model is not in place"
            if f.removes:
                why += ", or no deletion may happen"
            rows.append(_file_row("hold-file", f.model, f.name, f"{f.reason}; {why}"))
    for fid in p.files_left:
        reason = "in the bucket, but a file we did not write is there; left alone"
        model, _, name = fid.rpartition("/")
        rows.append(_file_row("leave", model, name, reason))
    return rows


def _file_row(action: str, model: str, name: str, reason: str) -> dict[str, Any]:
    return {"action": action, "version": f"{model}/{name}", "model": model, "file": name} | {
        "state": None,
        "reason": reason,
    }


def status(config: Config) -> int:
    """Exit 3 exactly when `plan` does (a guard refuses this pass's deletions); else 0."""
    check_commands(config)
    logs.setup(config.log_format, config.verbosity)
    with stop_on_signals() as stop:
        snap = inspect(config, stop)
    planned = plan_rows(config, snap, _served(config, snap) if config.server else None)
    models = model_status(snap, planned)
    code = EXIT_GUARD if planned.code == EXIT_GUARD else EXIT_OK
    if config.output == "json":
        doc = {
            "source": str(config.source),
            "dest": str(config.dest),
            "models": models,
            "guard": planned.guard,
        }
        print(json.dumps(doc))
        return code
    width = max([len(m["model"]) for m in models] + [5])
    print(f"{'MODEL':<{width}}  {'BUCKET':<24}  {'LOCAL':<24}  STATE")
    for m in models:
        print(
            f"{m['model']:<{width}}  {_versions(m['bucket']):<24}  "
            f"{_versions(m['local']):<24}  {status_line(m)}"
        )
    for line in planned.guard_lines:
        print(line)
    return code


NOT_PENDING = ("leave", "skip")  # plan rows that change nothing


def model_status(snap: Snapshot, planned: Planned) -> list[dict[str, Any]]:
    """Per model: versions in the bucket, versions on disk, and what a pass would change
    (plan's rows for that model, `version` being the number)."""
    p = snap.plan
    bucket: dict[str, set[str]] = {}
    for i in p.installs + p.held:
        bucket.setdefault(i.version.model, set()).add(i.version.version)
    for vid in (*p.in_sync, *p.outside_keep, *(r.id for r in p.rejections if r.listed)):
        model, version = _split(vid)
        bucket.setdefault(model, set()).add(version)
    for w in p.waiting:
        bucket.setdefault(w.version.model, set()).add(w.version.version)
    local: dict[str, set[str]] = {}
    for vid in snap.local.on_disk:
        model, version = _split(vid)
        local.setdefault(model, set()).add(version)
    pending: dict[str, list[dict[str, Any]]] = {}
    for row in planned.rows:
        if row["action"] in NOT_PENDING:
            continue
        entry = {k: v for k, v in row.items() if k not in ("version", "model", "number")}
        entry["version"] = row.get("number")
        pending.setdefault(row["model"], []).append(entry)
    out = []
    for model in sorted(set(bucket) | set(local)):
        out.append(
            {
                "model": model or ".",
                "bucket": sorted(bucket.get(model, ()), key=int),
                "local": sorted(local.get(model, ()), key=int),
                "in_sync": not pending.get(model),
                "pending": pending.get(model, []),
            }
        )
    return out


def status_line(model: dict[str, Any]) -> str:
    """A model's STATE column: in sync, or each pending change in a few words."""
    if not model["pending"]:
        return "in sync"
    return "out of sync: " + ", ".join(_said(e) for e in model["pending"])


def _said(e: dict[str, Any]) -> str:
    action, v, state = e["action"], e.get("version"), e.get("state")
    if action in ("fetch", "replace"):
        if state == "failed":
            return f"failed {v} ({e['error']})"
        if state == "resuming":
            total = progress.human(e["download_bytes"])
            return f"resuming {v} ({progress.human(e['resume_bytes'])} of {total} on disk)"
        if state == "reinstall":
            return f"reinstall {v} (its folder is gone)"
        return f"{state} {v}"
    if action in ("wait", "hold", "reject"):
        word = {"wait": "waiting", "hold": "hold", "reject": "rejected"}[action]
        return f"{word} {v} ({e['reason']})"
    if action == "refuse-prune":
        return f"refused prune {v}"
    if action == "refuse":
        return f"refused ({e['reason']})"
    if action.endswith("-file"):
        return f"{action.removesuffix('-file')} {e['file']}"
    return f"{action} {v}"


def _split(vid: str) -> tuple[str, str]:
    model, _, version = vid.rpartition("/")
    assert version_id(model, version) == vid
    return model, version


def _versions(vs: list[str]) -> str:
    text = " ".join(vs) or "-"
    return text if len(text) <= 24 else "…" + text[-23:]
