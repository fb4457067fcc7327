"""One reconciliation pass, in the pipeline's order: list -> scan -> plan -> (free room) ->
stage, verify and publish -> model files -> TF Serving config -> confirm with the server ->
prune.

What may be deleted or changed is decided in deletions.py alone; install.py runs the
workers, model_files.py and prune.py carry the decisions out, rollout.py asks the model
server, ledger.py records every change into the state file and the report; the steps share
one Pass (pass_.py).
"""

from __future__ import annotations

import contextlib
import logging
import time

from gcs_model_sync import (
    deletions,
    install,
    lock,
    model_files,
    partials,
    prune,
    rollout,
    tfs_config,
)
from gcs_model_sync.config import Config
from gcs_model_sync.dest import check_dest, dest_error
from gcs_model_sync.durability import clean_scratch
from gcs_model_sync.errors import Interrupted, SyncError
from gcs_model_sync.failures import Step, classify
from gcs_model_sync.layout import split_id
from gcs_model_sync.listing import Listing
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass, Watch
from gcs_model_sync.paths import Paths
from gcs_model_sync.plan import Plan
from gcs_model_sync.remote import Bucket
from gcs_model_sync.report import (
    Failure,
    FailureKind,
    Report,
    install_state,
    published_as,
    rejected,
)
from gcs_model_sync.retry import StopToken
from gcs_model_sync.snapshot import Snapshot, inspect, snapshot
from gcs_model_sync.state import Managed
from gcs_model_sync.verify import Verify

__all__ = [
    "Failure",
    "FailureKind",
    "Report",
    "Snapshot",
    "Watch",
    "check_dest",
    "dest_error",
    "inspect",
    "sync_once",
]


def sync_once(config: Config, stop: StopToken, watch: Watch | None = None) -> Report:
    """One pass; `watch(total_bytes, bytes_so_far, in_flight)` may show its progress (a
    terminal's bar)."""
    started = time.monotonic()
    report = Report()
    bucket = Bucket(config, stop)
    try:
        _pass(Pass(config, stop, Paths(config.dest), bucket, report, watch))
    finally:
        report.bytes_downloaded = bucket.counters.bytes_read
        report.list_requests = bucket.counters.list_requests
        report.object_reads = bucket.counters.object_reads
        report.peak_connections = bucket.link.connections.peak
        report.seconds = time.monotonic() - started
    return report


def _pass(run: Pass) -> None:
    """A destination we never wrote to is listed before anything is created in it: a typo'd
    bucket or prefix on a fresh node leaves no trace. Anywhere else the listing is made under
    the lock, so it is never older than what another run published while we waited."""
    config, paths = run.config, run.paths
    listing, snap = None, None
    if not paths.state_dir.is_dir():
        listing = _list(run.bucket, run.report)
        if listing is None:
            return
        snap = snapshot(config, paths, listing, run.bucket)
        if snap.plan.empty:
            _nothing_to_serve(config, snap, run.report)
            return
    with contextlib.ExitStack() as held:
        try:
            paths.ensure()
            held.enter_context(lock.hold(paths.lock_file, config.lock_timeout, run.stop))
        except OSError as exc:
            raise dest_error(config.dest, exc) from exc
        _clean_scratch(paths)
        if paths.state_file.exists():  # another run wrote here meanwhile: list afresh
            listing, snap = None, None
        if listing is None:
            listing = _list(run.bucket, run.report)
            if listing is None:
                return
        _run(run, snap or snapshot(config, paths, listing, run.bucket))


def _list(bucket: Bucket, report: Report) -> Listing | None:
    """The listing, or None after recording why it failed (then nothing changes)."""
    try:
        return bucket.list_objects()
    except Interrupted:
        raise
    except SyncError as exc:
        report.fail(classify(exc, Step.LIST), None, None, str(exc))
        event(logging.ERROR, "listing_failed", f"{exc}; nothing changed", error=str(exc))
        return None


def _nothing_to_serve(config: Config, snap: Snapshot, report: Report) -> None:
    """Nothing to install, prune or name in --tfs-config: change nothing (exit 3)."""
    report.plan = snap.plan
    report.on_disk = snap.local.on_disk
    report.guard = snap.plan.empty
    event(logging.ERROR, "nothing_to_serve", snap.plan.empty or "", source=str(config.source))


def _clean_scratch(paths: Paths) -> None:
    """Staging left over means a run was killed mid-pass: worth saying. The trash holds what
    the last pass replaced or pruned, kept for readers until now: emptying it is routine."""
    crashed, retired = clean_scratch(paths)
    if crashed:
        event(
            logging.INFO,
            "cleaned",
            f"removed {crashed} staging leftover(s) of an interrupted pass",
            staging=crashed,
        )
    if retired:
        event(
            logging.DEBUG,
            "trash_emptied",
            f"emptied the trash: {retired} tree(s) retired by the last pass",
            trash=retired,
        )


def _run(run: Pass, snap: Snapshot) -> None:
    """The pass under the lock, from the snapshot of its listing."""
    config, paths, report = run.config, run.paths, run.report
    plan = report.plan = snap.plan
    report.on_disk = snap.local.on_disk
    if plan.empty:
        _nothing_to_serve(config, snap, report)
        return
    _say_planned(run, snap)
    ledger = run.keep(snap.state)
    plan = prune.make_room(run, plan, snap.local)
    # A held install (a clash, a link) keeps its partial downloads for the pass that installs it.
    kept = (o for i in plan.installs + plan.held for o in i.version.objects)
    partials.remove_stale(paths.partial, kept)
    _install(run, plan)
    ledger.refused((r.id for r in plan.rejections if r.refused), config.verify or "")
    ledger.failed(i.version for i in snap.plan.installs + plan.installs)
    ledger.forget(plan.forget, plan.files_forget)
    # A model's files change after its versions are published, and only when all of them are.
    decision = deletions.decide(plan, report.failures)
    _log_held_files(decision)
    if decision.files:
        model_files.apply(run, decision.files)
    on_disk = snap.local.on_disk | set(report.published)
    served = None
    if config.tfs_config:  # before asking the server: TF Serving learns new models from it
        _write_tfs_config(run)
    if config.server:
        ledger.save()  # what the server may now load is recorded as ours first
        changed = {split_id(v)[0] for v in report.published}
        changed |= {split_id(f)[0] for f in report.files_written + report.files_removed}
        served = rollout.confirm(run, on_disk, changed)
    prune.prune(run, plan, served)
    ledger.save()
    report.on_disk = on_disk - set(report.pruned)
    if config.tfs_config and report.pruned:
        _write_tfs_config(run)


def _say_planned(run: Pass, snap: Snapshot) -> None:
    """What the plan refuses or leaves alone, said before anything changes."""
    plan, dest, report = snap.plan, run.paths.dest, run.report
    report.failures.extend(snap.refused)
    for r in plan.rejections:
        report.failures.append(rejected(r))
        event(logging.ERROR, "version_rejected", r.message, model=r.model, version=r.version)
    for vid in plan.unmanaged:
        event(
            logging.WARNING,
            "unmanaged",
            f"{dest / vid}: not installed by us and not in the bucket; left alone",
            path=str(dest / vid),
        )
    for fid in plan.files_left:
        event(
            logging.WARNING,
            "file_left",
            f"{dest / fid}: in the bucket, but a file we did not write is there; left "
            "alone (remove it to have it mirrored)",
            path=str(dest / fid),
        )


def _install(run: Pass, plan: Plan) -> None:
    """Every install of the plan, watched when the caller shows progress."""
    total = sum(i.version.size for i in plan.installs)
    order = [i.version.id for i in plan.installs]
    report, counters = run.report, run.bucket.counters

    def in_flight() -> list[str]:
        """The pool takes installs in order: the first unfinished ones are being staged."""
        over = set(report.published) | {f.version for f in report.failures}
        return [vid for vid in order if vid not in over][: run.config.workers]

    with (
        run.watch(total, lambda: counters.bytes_read, in_flight)
        if run.watch and total
        else contextlib.nullcontext()
    ):
        labels = _labels(plan, run.paths, run.managed)
        install.install_all(run, plan.installs, _check(run.config), labels)


def _check(config: Config) -> Verify | None:
    if not config.verify:
        return None
    env = {"GCS_MODEL_SYNC_DEST": str(config.dest), "GCS_MODEL_SYNC_SOURCE": str(config.source)}
    return Verify(config.verify, config.hook_timeout, env)


def _labels(plan: Plan, paths: Paths, managed: dict[str, Managed]) -> dict[str, str]:
    """How the `published` line names each install: new, resumed, replaced, reinstalled."""
    labels = {}
    for i in plan.installs:
        v = i.version
        resume = sum(partials.on_disk(paths.partial, o) for o in v.objects)
        have = managed.get(v.id)
        labels[v.id] = published_as(install_state(i, have.fingerprint if have else None, resume))
    return labels


def _log_held_files(decision: deletions.Decision) -> None:
    for f in decision.files_held:
        event(
            logging.WARNING,
            "file_held",
            f"not changing {f.id} yet: {decision.why[f]}",
            model=f.model,
            file=f.name,
        )


def _write_tfs_config(run: Pass) -> None:
    """Name every model that has a version under DEST, so TF Serving learns of new models."""
    config, paths, managed = run.config, run.paths, run.managed
    assert config.tfs_config is not None
    models = {m.model for m in managed.values() if paths.version_dir(m.model, m.version).is_dir()}
    try:
        text = tfs_config.render(tfs_config.models_for(paths.dest, models))
        if tfs_config.write_if_changed(config.tfs_config, text, paths.dest):
            event(logging.INFO, "tfs_config", f"wrote {config.tfs_config} ({len(models)} models)")
    except (SyncError, OSError, ValueError) as exc:
        message = f"--tfs-config {config.tfs_config}: {exc}"
        run.report.fail(classify(exc, Step.WRITE), None, None, message)
        event(logging.ERROR, "tfs_config_failed", message)
