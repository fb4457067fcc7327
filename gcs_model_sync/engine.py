"""One reconciliation pass, in the pipeline's order: list -> scan -> plan -> (free room) ->
stage, verify and publish -> model files -> TF Serving config -> confirm with the server ->
prune.

What may be deleted or changed is decided in deletions.py alone; install.py runs the
workers, model_files.py and prune.py carry the decisions out, rollout.py asks the model
server, saver.py keeps the state file.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from gcs_model_sync import (
    deletions,
    install,
    lock,
    model_files,
    partials,
    peek,
    prune,
    rollout,
    tfs_config,
)
from gcs_model_sync.complete import Rules
from gcs_model_sync.config import Config, dest_not_a_folder
from gcs_model_sync.errors import ConfigError, Interrupted, SyncError, os_error
from gcs_model_sync.layout import RemoteObject, group
from gcs_model_sync.layout import model_files as listed_files
from gcs_model_sync.listing import Listing
from gcs_model_sync.local import (
    LastFailure,
    LocalView,
    Managed,
    Paths,
    Refusal,
    State,
    StateError,
    clean_scratch,
    load_state,
    scan,
)
from gcs_model_sync.logs import event
from gcs_model_sync.plan import Install, Plan, make_plan
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
from gcs_model_sync.saver import StateSaver
from gcs_model_sync.verify import Verify

__all__ = ["Failure", "FailureKind", "Report", "Snapshot", "Watch", "inspect", "sync_once"]

# Shows a pass's progress: called with the bytes to read, a way to read the count so far, and
# one to read the versions in flight.
Watch = Callable[[int, Callable[[], int], Callable[[], list[str]]], AbstractContextManager[object]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a read-only command needs: the listing, the local view, and the plan."""

    objects: list[RemoteObject]
    local: LocalView
    plan: Plan
    state: State  # the state file as read; a pass changes it as it goes
    refused: tuple[Failure, ...] = ()  # what a symbolic link below DEST kept out of the plan


def inspect(config: Config, stop: StopToken) -> Snapshot:
    """List and plan without writing anything (for `plan` and `status`)."""
    bucket = Bucket(config, stop)
    return _snapshot(config, Paths(config.dest), bucket.list_objects(), bucket)


def _snapshot(config: Config, paths: Paths, listing: Listing, bucket: Bucket) -> Snapshot:
    objects = listing.objects
    try:
        state = load_state(paths)
    except StateError as exc:
        event(logging.WARNING, "state_unreadable", f"{exc}; treating every folder as unmanaged")
        state = State()
    # A refusal stands for the command that made it: a fixed --verify checks again.
    state.refused = {k: r for k, r in state.refused.items() if r.command == config.verify}
    groups = group(objects, config.source.prefix)  # once: the scan and the plan share it
    models = {model for model, _version, _form in groups}
    local = scan(paths, models, state)
    files = listed_files(objects, config.source.prefix, models) if config.model_files else None
    # A few model files' bytes decide completeness (complete.to_read): read, then planned again.
    make = functools.partial(
        make_plan,
        groups,
        local,
        keep=config.keep,
        allow_empty_source=config.allow_empty_source,
        max_delete=config.max_delete,
        rules=Rules(_bucket_now(listing, config), config.settle, config.ready_marker),
        source=str(config.source),
        files=files,
    )
    plan = peek.planned(bucket, lambda facts: make(facts=facts))
    plan, refused = deletions.refuse_links(plan, paths.dest, local.links)
    for f in refused:
        event(logging.ERROR, "link_refused", f.message, model=f.model)
    return Snapshot(objects, local, plan, state, refused)


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
    """One pass; `watch(total_bytes, bytes_so_far, in_flight)` may show its progress (a
    terminal's bar)."""
    started = time.monotonic()
    paths = Paths(config.dest)
    report = Report()
    bucket = Bucket(config, stop)
    try:
        _pass(config, stop, paths, bucket, report, watch)
    finally:
        report.bytes_downloaded = bucket.counters.bytes_read
        report.list_requests = bucket.counters.list_requests
        report.object_reads = bucket.counters.object_reads
        report.peak_connections = bucket.link.connections.peak
        report.seconds = time.monotonic() - started
    return report


def _pass(
    config: Config,
    stop: StopToken,
    paths: Paths,
    bucket: Bucket,
    report: Report,
    watch: Watch | None,
) -> None:
    """A destination we never wrote to is listed before anything is created in it: a typo'd
    bucket or prefix on a fresh node leaves no trace. Anywhere else the listing is made under
    the lock, so it is never older than what another run published while we waited."""
    listing, snap = None, None
    if not paths.state_dir.is_dir():
        listing = _list(bucket, report)
        if listing is None:
            return
        snap = _snapshot(config, paths, listing, bucket)
        if snap.plan.empty:
            _nothing_to_serve(config, snap, report)
            return
    with contextlib.ExitStack() as held:
        try:
            paths.ensure()
            held.enter_context(lock.hold(paths.lock_file, config.lock_timeout, stop))
        except OSError as exc:
            raise dest_error(config.dest, exc) from exc
        _clean_scratch(paths)
        if paths.state_file.exists():  # another run wrote here meanwhile: list afresh
            listing, snap = None, None
        if listing is None:
            listing = _list(bucket, report)
            if listing is None:
                return
        _run(config, stop, paths, bucket, report, listing, snap, watch)


def _list(bucket: Bucket, report: Report) -> Listing | None:
    """The listing, or None after recording why it failed (then nothing changes)."""
    try:
        return bucket.list_objects()
    except Interrupted:
        raise
    except SyncError as exc:
        report.fail(FailureKind.LISTING, None, None, str(exc))
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
    crashed = 0
    with contextlib.suppress(OSError), os.scandir(paths.staging) as it:
        crashed = sum(1 for _ in it)
    removed = clean_scratch(paths)
    if crashed:
        event(
            logging.INFO,
            "cleaned",
            f"removed {crashed} staging leftover(s) of an interrupted pass",
            staging=crashed,
        )
    if retired := removed - crashed:
        event(
            logging.DEBUG,
            "trash_emptied",
            f"emptied the trash: {retired} tree(s) retired by the last pass",
            trash=retired,
        )


def check_dest(dest: Path) -> None:
    """A --dest that `once` or `run` cannot write is a usage error before any pass (a
    read-only mount, no permission), said as the other --dest problems are."""
    for place in (dest, *dest.parents):
        if place.is_dir():
            break
    else:
        return
    if not os.access(place, os.W_OK | os.X_OK):
        raise ConfigError(f"--dest {dest}: not writable ({_unwritable(place)})")


def _unwritable(place: Path) -> str:
    try:
        read_only = bool(os.statvfs(place).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return os.strerror(errno.EROFS if read_only else errno.EACCES)


def dest_error(dest: Path, exc: OSError) -> SyncError:
    """What the file system said when we created our folders or the lock under --dest."""
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and (problem := dest_not_a_folder(dest)):
        return ConfigError(problem)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ConfigError(f"--dest {dest}: not writable ({exc.strerror})")
    return SyncError(f"--dest {dest}: cannot write there ({os_error(exc)})")


def _run(
    config: Config,
    stop: StopToken,
    paths: Paths,
    bucket: Bucket,
    report: Report,
    listing: Listing,
    snap: Snapshot | None = None,
    watch: Watch | None = None,
) -> None:
    """The pass under the lock, from its listing (and the snapshot made from it, when no
    other run can have changed DEST since)."""
    snap = snap or _snapshot(config, paths, listing, bucket)
    plan = report.plan = snap.plan
    report.on_disk = snap.local.on_disk
    if plan.empty:
        _nothing_to_serve(config, snap, report)
        return
    state = snap.state
    managed = state.versions
    report.failures.extend(snap.refused)
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
    for fid in plan.files_left:
        event(
            logging.WARNING,
            "file_left",
            f"{paths.dest / fid}: in the bucket, but a file we did not write is there; left "
            "alone (remove it to have it mirrored)",
            path=str(paths.dest / fid),
        )

    saver = StateSaver(paths, state, str(config.source))
    plan = prune.make_room(config, paths, bucket, plan, snap.local, report, managed, saver)
    # A held install (a clash, a link) keeps its partial downloads for the pass that installs it.
    kept = (o for i in plan.installs + plan.held for o in i.version.objects)
    partials.remove_stale(paths.partial, kept)
    total = sum(i.version.size for i in plan.installs)
    order = [i.version.id for i in plan.installs]

    def in_flight() -> list[str]:
        """The pool takes installs in order: the first unfinished ones are being staged."""
        over = set(report.published) | {f.version for f in report.failures}
        return [vid for vid in order if vid not in over][: config.workers]

    with (
        watch(total, lambda: bucket.counters.bytes_read, in_flight)
        if watch and total
        else contextlib.nullcontext()
    ):
        install.install_all(
            config,
            stop,
            paths,
            bucket,
            plan.installs,
            report,
            managed,
            saver,
            _check(config),
            _labels(plan, paths, managed),
        )
    if set(order) - set(report.published):  # their "pending" entries on disk go
        saver.dirty = True
    _remember_refusals(config, plan, report, state, saver)
    _remember_failures(snap.plan.installs + plan.installs, report, state, saver)
    for vid in plan.forget:
        managed.pop(vid, None)
    for fid in plan.files_forget:
        state.files.pop(fid, None)
    saver.dirty = saver.dirty or bool(plan.forget or plan.files_forget)
    # A model's files change after its versions are published, and only when all of them are.
    decision = deletions.decide(plan, report.failures)
    _log_held_files(decision)
    if decision.files:
        model_files.apply(decision.files, config, paths, bucket, report, state, saver)
    on_disk = snap.local.on_disk | set(report.published)
    served = None
    if config.tfs_config:  # before asking the server: TF Serving learns new models from it
        _write_tfs_config(config, paths, managed, report)
    if config.server:
        saver.save()  # what the server may now load is recorded as ours first
        changed = {v.rpartition("/")[0] for v in report.published}
        changed |= {f.rpartition("/")[0] for f in report.files_written + report.files_removed}
        served = rollout.confirm(config, on_disk, changed, report, stop)
    prune.prune(plan, paths, report, managed, saver, served)
    saver.save()
    report.on_disk = on_disk - set(report.pruned)
    if config.tfs_config and report.pruned:
        _write_tfs_config(config, paths, managed, report)


def _check(config: Config) -> Verify | None:
    if not config.verify:
        return None
    env = {"GCS_MODEL_SYNC_DEST": str(config.dest), "GCS_MODEL_SYNC_SOURCE": str(config.source)}
    return Verify(config.verify, config.hook_timeout, env)


def _remember_refusals(
    config: Config, plan: Plan, report: Report, state: State, saver: StateSaver
) -> None:
    """Keep a refusal while its version is listed unchanged; forget it once the version is
    published or gone (a refused version is not downloaded again until its object changes)."""
    standing = {r.id for r in plan.rejections if r.refused} - set(report.published)
    kept = {vid: r for vid, r in state.refused.items() if vid in standing}
    for vid, (fingerprint, message) in report.refusals.items():
        kept[vid] = Refusal(fingerprint, config.verify or "", message)
    if kept != state.refused:
        state.refused = kept
        saver.dirty = True


def _labels(plan: Plan, paths: Paths, managed: dict[str, Managed]) -> dict[str, str]:
    """How the `published` line names each install: new, resumed, replaced, reinstalled."""
    labels = {}
    for i in plan.installs:
        v = i.version
        resume = sum(partials.on_disk(paths.partial, o) for o in v.objects)
        have = managed.get(v.id)
        labels[v.id] = published_as(install_state(i, have.fingerprint if have else None, resume))
    return labels


def _remember_failures(
    installs: tuple[Install, ...], report: Report, state: State, saver: StateSaver
) -> None:
    """Why each install failed, for `status` in the passes after: kept while the version is
    listed unchanged and not installed; a pass that did not try it keeps what was known."""
    pending = {i.version.id: i.version for i in installs}
    done = set(report.published)
    why: dict[str, str] = {}
    for f in report.failures:
        if f.version in pending and f.kind is not FailureKind.ROLLOUT:
            why.setdefault(f.version, f.message)
    kept = {
        vid: last
        for vid, last in state.failed.items()
        if vid in pending and vid not in done and last.fingerprint == pending[vid].fingerprint
    }
    kept.update({vid: LastFailure(pending[vid].fingerprint, m) for vid, m in why.items()})
    kept = {vid: last for vid, last in kept.items() if vid not in done}
    if kept != state.failed:
        state.failed = kept
        saver.dirty = True


def _log_held_files(decision: deletions.Decision) -> None:
    for f in decision.files_held:
        event(
            logging.WARNING,
            "file_held",
            f"not changing {f.id} yet: a version of its model failed, is refused or is still "
            "uploading, or no deletion may happen this pass",
            model=f.model,
            file=f.name,
        )


def _write_tfs_config(
    config: Config, paths: Paths, managed: dict[str, Managed], report: Report
) -> None:
    """Name every model that has a version under DEST, so TF Serving learns of new models."""
    assert config.tfs_config is not None
    models = {m.model for m in managed.values() if paths.version_dir(m.model, m.version).is_dir()}
    try:
        text = tfs_config.render(tfs_config.models_for(paths.dest, models))
        if tfs_config.write_if_changed(config.tfs_config, text, paths.dest):
            event(logging.INFO, "tfs_config", f"wrote {config.tfs_config} ({len(models)} models)")
    except (SyncError, OSError, ValueError) as exc:
        report.fail(FailureKind.LOCAL, None, None, f"--tfs-config {config.tfs_config}: {exc}")
        event(logging.ERROR, "tfs_config_failed", f"--tfs-config {config.tfs_config}: {exc}")
