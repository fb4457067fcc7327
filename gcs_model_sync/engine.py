"""One reconciliation pass, in the pipeline's order: list -> scan -> plan -> (free room) ->
stage and publish -> prune -> TF Serving config.

What may be deleted is decided in deletions.py alone; install.py runs the workers,
prune.py carries deletions out, saver.py keeps the state file.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from gcs_model_sync import install, lock, prune, ranged, tfs_config
from gcs_model_sync.complete import Rules
from gcs_model_sync.config import Config
from gcs_model_sync.errors import Interrupted, SyncError, os_error
from gcs_model_sync.layout import RemoteObject, group
from gcs_model_sync.local import (
    LocalView,
    Managed,
    Paths,
    StateError,
    clean_scratch,
    load_state,
    scan,
)
from gcs_model_sync.logs import event
from gcs_model_sync.plan import Plan, make_plan
from gcs_model_sync.remote import Bucket, Listing
from gcs_model_sync.report import Failure, FailureKind, Report, rejected
from gcs_model_sync.retry import StopToken
from gcs_model_sync.saver import StateSaver

__all__ = ["Failure", "FailureKind", "Report", "Snapshot", "Watch", "inspect", "sync_once"]

# Shows a pass's progress: called with the bytes to read and a way to read the count so far.
Watch = Callable[[int, Callable[[], int]], AbstractContextManager[object]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a read-only command needs: the listing, the local view, and the plan."""

    objects: list[RemoteObject]
    local: LocalView
    plan: Plan


def inspect(config: Config, stop: StopToken) -> Snapshot:
    """List and plan without writing anything (for `plan` and `status`)."""
    listing = Bucket(config, stop).list_objects()
    return _snapshot(config, Paths(config.dest), listing)


def _snapshot(config: Config, paths: Paths, listing: Listing) -> Snapshot:
    objects = listing.objects
    try:
        managed = load_state(paths)
    except StateError as exc:
        event(logging.WARNING, "state_unreadable", f"{exc}; treating every folder as unmanaged")
        managed = {}
    groups = group(objects, config.source.prefix)  # once: the scan and the plan share it
    local = scan(paths, {model for model, _version, _form in groups}, managed)
    plan = make_plan(
        groups,
        local,
        keep=config.keep,
        allow_empty_source=config.allow_empty_source,
        max_delete=config.max_delete,
        rules=Rules(_bucket_now(listing, config), config.settle, config.ready_marker),
        source=str(config.source),
    )
    return Snapshot(objects, local, plan)


def _bucket_now(listing: Listing, config: Config) -> float | None:
    """The bucket's clock for --settle. Every GCS response carries `Date`; a proxy that strips
    it leaves us the node's clock, said once a pass, since a skewed node then misjudges."""
    if listing.server_time is not None or not config.settle:
        return listing.server_time
    event(
        logging.WARNING,
        "no_server_time",
        "the listing response had no Date header; --settle is judged on this node's clock",
    )
    return time.time()


def sync_once(config: Config, stop: StopToken, watch: Watch | None = None) -> Report:
    """One pass; `watch(total_bytes, bytes_so_far)` may show its progress (a terminal's bar)."""
    started = time.monotonic()
    paths = Paths(config.dest)
    try:
        paths.ensure()
    except OSError as exc:
        raise SyncError(f"--dest {config.dest}: cannot write there ({os_error(exc)})") from exc
    report = Report()
    with lock.hold(paths.lock_file, config.lock_timeout, stop):
        if leftovers := clean_scratch(paths):
            event(logging.INFO, "cleaned", f"removed {leftovers} staging/trash leftover(s)")
        bucket = Bucket(config, stop)
        try:
            _run(config, stop, paths, bucket, report, watch)
        finally:
            report.bytes_downloaded = bucket.counters.bytes_read
            report.list_requests = bucket.counters.list_requests
            report.object_reads = bucket.counters.object_reads
            report.peak_connections = bucket.link.connections.peak
            report.seconds = time.monotonic() - started
    return report


def _run(
    config: Config,
    stop: StopToken,
    paths: Paths,
    bucket: Bucket,
    report: Report,
    watch: Watch | None = None,
) -> None:
    try:
        listing = bucket.list_objects()
    except Interrupted:
        raise
    except SyncError as exc:
        report.fail(FailureKind.LISTING, None, None, str(exc))
        event(logging.ERROR, "listing_failed", f"{exc}; nothing changed", error=str(exc))
        return
    snap = _snapshot(config, paths, listing)
    plan = report.plan = snap.plan
    report.on_disk = snap.local.on_disk
    if plan.empty:  # nothing to install, prune or name in --tfs-config: change nothing
        report.guard = plan.empty
        event(logging.ERROR, "nothing_to_serve", plan.empty, source=str(config.source))
        return
    managed = dict(snap.local.managed)
    for r in plan.rejections:
        report.failures.append(rejected(r))
        event(logging.ERROR, "version_rejected", r.message, model=r.model, version=r.version)
    for vid in plan.unmanaged:
        event(
            logging.WARNING,
            "unmanaged",
            f"{paths.dest / vid}: not installed by us and not in the bucket; left alone",
            path=str(paths.dest / vid),
        )

    saver = StateSaver(paths, managed, str(config.source))
    plan = prune.make_room(config, paths, bucket, plan, snap.local, report, managed, saver)
    ranged.remove_stale(paths.partial, (o for i in plan.installs for o in i.version.objects))
    total = sum(i.version.size for i in plan.installs)
    with (
        watch(total, lambda: bucket.counters.bytes_read)
        if watch and total
        else contextlib.nullcontext()
    ):
        install.install_all(config, stop, paths, bucket, plan.installs, report, managed, saver)
    for vid in plan.forget:
        managed.pop(vid, None)
    saver.dirty = saver.dirty or bool(plan.forget)
    prune.prune(plan, paths, report, managed, saver)
    saver.save()
    report.on_disk = (snap.local.on_disk | set(report.published)) - set(report.pruned)
    if config.tfs_config:
        _write_tfs_config(config, paths, managed, report)


def _write_tfs_config(
    config: Config, paths: Paths, managed: dict[str, Managed], report: Report
) -> None:
    """Name every model that has a version under DEST, so TF Serving learns of new models."""
    assert config.tfs_config is not None
    models = {m.model for m in managed.values() if paths.version_dir(m.model, m.version).is_dir()}
    try:
        text = tfs_config.render(tfs_config.models_for(paths.dest, models))
        if tfs_config.write_if_changed(config.tfs_config, text):
            event(logging.INFO, "tfs_config", f"wrote {config.tfs_config} ({len(models)} models)")
    except (SyncError, OSError, ValueError) as exc:
        report.fail(FailureKind.LOCAL, None, None, f"--tfs-config {config.tfs_config}: {exc}")
        event(logging.ERROR, "tfs_config_failed", f"--tfs-config {config.tfs_config}: {exc}")
