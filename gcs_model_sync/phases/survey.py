"""The pass's first phase: open it, list, take the lock, scan and plan.

A destination we never wrote to is listed before anything is created in it: a typo'd bucket
or prefix on a fresh node leaves no trace. Anywhere else the listing is made under the lock,
so it is never older than what another run published while we waited.
"""

from __future__ import annotations

import logging

from gcs_model_sync.errors import Interrupted, SyncError
from gcs_model_sync.failures import Step, classify
from gcs_model_sync.local import lock
from gcs_model_sync.local.durability import clean_scratch
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.phases.dest import dest_error
from gcs_model_sync.phases.snapshot import Snapshot, snapshot
from gcs_model_sync.report import rejected


def survey(run: Pass) -> bool:
    """Take the lock (held until the pass exits), scan DEST and make the plan; False when
    there is nothing to do (the listing failed, or nothing to serve: the report says which)."""
    snap = _survey(run)
    if snap is None:
        return False
    run.local, run.plan = snap.local, snap.plan
    run.keep(snap.state)
    return True


def _survey(run: Pass) -> Snapshot | None:
    config, paths = run.config, run.paths
    snap = None
    if not paths.state_dir.is_dir():
        snap = _look(run)
        if snap is None or _nothing_to_serve(run, snap):
            return None
    try:
        paths.ensure()
        run.held.enter_context(lock.hold(paths.lock_file, config.lock_timeout, run.stop))
    except OSError as exc:
        raise dest_error(config.dest, exc) from exc
    _clean_scratch(paths)
    if snap is None or paths.state_file.exists():  # another run wrote here meanwhile
        snap = _look(run)
        if snap is None:
            return None
    if _nothing_to_serve(run, snap):
        return None
    _say_planned(run, snap)
    return snap


def _look(run: Pass) -> Snapshot | None:
    """List, scan and plan; None after recording why the listing failed (nothing changes)."""
    try:
        listing = run.bucket.list_objects()
    except Interrupted:
        raise
    except SyncError as exc:
        run.report.fail(classify(exc, Step.LIST), None, None, str(exc))
        event(logging.ERROR, "listing_failed", f"{exc}; nothing changed", error=str(exc))
        return None
    return snapshot(run.config, run.paths, listing, run.bucket)


def _nothing_to_serve(run: Pass, snap: Snapshot) -> bool:
    """Nothing to install, prune or name in --tfs-config: change nothing (exit 3)."""
    report = run.report
    report.plan = snap.plan
    report.on_disk = snap.local.on_disk
    if not snap.plan.empty:
        return False
    report.guard = snap.plan.empty
    event(logging.ERROR, "nothing_to_serve", snap.plan.empty, source=str(run.config.source))
    return True


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


def _say_planned(run: Pass, snap: Snapshot) -> None:
    """What the plan refuses or leaves alone, said before anything changes."""
    plan, dest, report = snap.plan, run.paths.dest, run.report
    report.failures.extend(snap.refused)
    for r in plan.rejections:
        report.failures.append(rejected(r))
        event(logging.ERROR, "version_rejected", r.message, model=r.model, version=r.version)
    for problem in plan.problems:
        report.failures.append(rejected(problem))
        event(logging.ERROR, "hold_refused", problem.message, model=problem.model)
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
