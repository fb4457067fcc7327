"""One reconciliation pass: list -> scan -> plan -> stage -> publish -> prune.

Deletions wait until every install has been tried, and are skipped entirely when a listing
or a download failed (rclone's rule); a version whose *content* was rejected only holds back
pruning in its own model, so one bad upload cannot leave a model short under --keep.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from gcs_model_sync import fetch, lock, progress, publish, space, tfs_config
from gcs_model_sync.complete import Rules
from gcs_model_sync.config import Config
from gcs_model_sync.errors import (
    EXIT_FAILED,
    EXIT_GUARD,
    EXIT_OK,
    Interrupted,
    SyncError,
    VersionRejected,
)
from gcs_model_sync.layout import Form, RemoteObject, group
from gcs_model_sync.local import (
    LocalView,
    Managed,
    Paths,
    StateError,
    clean_scratch,
    load_state,
    remove_tree,
    save_state,
    scan,
    sync_dirs,
    sync_trees,
)
from gcs_model_sync.logs import event
from gcs_model_sync.plan import Install, Plan, freeable, make_plan
from gcs_model_sync.remote import Bucket, Listing
from gcs_model_sync.retry import StopToken

STATE_SAVE_EVERY = 1.0  # seconds; a crash between saves only costs a re-download
WORKERS_STOP_WITHIN = 2.0  # seconds a pass that ends early waits for its downloads to stop
# Versions staged within this many seconds share one durability barrier (a syncfs commits the
# journal and stalls every other thread's metadata writes: 1,000 tiny versions, one each, took
# seconds). TF Serving polls once a second, so the wait is never seen.
BATCH_EVERY = 0.1


PENDING = "pending"  # written before a publish: a crash leaves "reinstall", never an orphan


@dataclass(frozen=True, slots=True)
class Failure:
    model: str | None
    version: str | None  # version id
    message: str
    content: bool = False  # the version's bytes are bad, as opposed to a transport failure


@dataclass
class Report:
    plan: Plan | None = None
    published: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    guard: str | None = None
    # Version folders on disk after the pass (of the models listed or installed by us), the
    # hand-made ones included: what a server would serve. None when the listing failed.
    on_disk: frozenset[str] | None = None
    bytes_downloaded: int = 0
    list_requests: int = 0
    object_reads: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.published or self.pruned)

    @property
    def exit_code(self) -> int:
        if self.guard:
            return EXIT_GUARD
        return EXIT_FAILED if self.failures else EXIT_OK

    @property
    def outcome(self) -> str:
        if self.failures or self.guard:
            return "error"
        return "success" if self.changed else "noop"


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


def sync_once(config: Config, stop: StopToken, show_progress: bool = False) -> Report:
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
            _run(config, stop, paths, bucket, report, show_progress)
        finally:
            report.bytes_downloaded = bucket.counters.bytes_read
            report.list_requests = bucket.counters.list_requests
            report.object_reads = bucket.counters.object_reads
            report.seconds = time.monotonic() - started
    return report


def _make_room(
    config: Config,
    paths: Paths,
    bucket: Bucket,
    plan: Plan,
    local: LocalView,
    report: Report,
    managed: dict[str, Managed],
    saver: _StateSaver,
) -> Plan:
    """rclone's delete-before, for a full disk only: when the installs do not fit, empty the
    trash and free versions this plan removes anyway (plan.freeable: never a model's newest,
    never past a guard), oldest first, until they do; then install.

    Without it a disk that holds --keep versions never takes the next one: its space check
    fails, a failure blocks every prune, and every pass fails alike. Only a pass that installs
    while something is freeable looks further: one ranged read of each zip's end learns what
    it extracts to (its stored size may be a fraction of that). Returns the plan with those
    sizes, less the prunes done here (so the end-of-pass prune does not try them again).
    """
    candidates = freeable(plan, local) if plan.installs else ()
    if not candidates:
        return plan
    plan = replace(plan, installs=space.with_stated_sizes(bucket, plan.installs, config.workers))
    need = sum(i.version.expected_size for i in plan.installs) + config.min_free_space
    free = space.free_bytes(paths.staging)
    if free >= need:
        return plan
    trees = {p.managed.id: paths.dest / p.managed.id for p in candidates}
    room = free + space.tree_bytes(paths.trash) + sum(space.tree_bytes(t) for t in trees.values())
    short = (
        f"the installs need about {need} bytes (with --min-free-space {config.min_free_space}) "
        f"but {free} are free"
    )
    if room < need:
        event(
            logging.WARNING,
            "no_room",
            f"{short}, and freeing the {len(candidates)} version(s) this pass removes anyway "
            "would not make room: nothing deleted before installing",
        )
        return plan
    event(
        logging.WARNING,
        "delete_before",
        f"{short}: deleting versions this pass removes anyway before installing "
        "(trash first, then the oldest)",
        need=need,
        free=free,
    )
    clean_scratch(paths)  # the trash; staging is empty before the installs
    freed = []
    for p in sorted(candidates, key=lambda p: (int(p.managed.version), p.managed.model)):
        if space.free_bytes(paths.staging) >= need:
            break
        m, target = p.managed, trees[p.managed.id]
        try:
            publish.retire(target, paths.trash)
        except OSError as exc:
            _local_failure(report, m.model, m.id, f"{m.id}: cannot prune: {os_error(exc)}")
            break
        clean_scratch(paths)  # no grace period in the trash: the space is needed now
        managed.pop(m.id, None)
        saver.changed(renamed_in=target.parent)
        report.pruned.append(m.id)
        freed.append(p)
        event(
            logging.INFO,
            "pruned",
            f"pruned {m.id} ({p.reason}; freed before installing)",
            model=m.model,
            version=m.version,
            reason=p.reason,
        )
    return replace(plan, prunes=tuple(p for p in plan.prunes if p not in freed))


def _run(
    config: Config,
    stop: StopToken,
    paths: Paths,
    bucket: Bucket,
    report: Report,
    show_progress: bool = False,
) -> None:
    try:
        listing = bucket.list_objects()
    except Interrupted:
        raise
    except SyncError as exc:
        report.failures.append(Failure(None, None, str(exc)))
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
        report.failures.append(Failure(r.model, r.id, r.message, content=True))
        event(logging.ERROR, "version_rejected", r.message, model=r.model, version=r.version)
    for vid in plan.unmanaged:
        event(
            logging.WARNING,
            "unmanaged",
            f"{paths.dest / vid}: not installed by us and not in the bucket; left alone",
            path=str(paths.dest / vid),
        )

    saver = _StateSaver(paths, managed, str(config.source))
    plan = _make_room(config, paths, bucket, plan, snap.local, report, managed, saver)
    total = sum(i.version.size for i in plan.installs)
    with (
        progress.Progress(total, lambda: bucket.counters.bytes_read)
        if show_progress and total
        else contextlib.nullcontext()
    ):
        _install_all(config, stop, paths, bucket, plan.installs, report, managed, saver)
    for vid in plan.forget:
        managed.pop(vid, None)
    saver.dirty = saver.dirty or bool(plan.forget)
    _prune(plan, paths, report, managed, saver)
    saver.finish()
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
        report.failures.append(Failure(None, None, f"--tfs-config {config.tfs_config}: {exc}"))
        event(logging.ERROR, "tfs_config_failed", f"--tfs-config {config.tfs_config}: {exc}")


def _install_all(
    config: Config,
    stop: StopToken,
    paths: Paths,
    bucket: Bucket,
    installs: tuple[Install, ...],
    report: Report,
    managed: dict[str, Managed],
    saver: _StateSaver,
) -> None:
    if not installs:
        return
    previous = {i.version.id: managed.get(i.version.id) for i in installs}
    for i in installs:
        v = i.version
        managed[v.id] = Managed(v.model, v.version, PENDING)
    saver.dirty = True
    saver.save()
    # The workers mind a stop of their own, set when the pass ends early for any reason (a
    # full disk at a state save, a bug): none of them may go on downloading into staging the
    # next pass cleans. The bucket is this pass's alone; a straggler keeps seeing this token.
    halt = bucket.stop = _PassStop(stop)
    pool = cf.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="stage")

    def discard(workdir: Path) -> None:
        """What is left of a staging folder is removed by a worker, off the publishing loop
        (rmdir costs a millisecond here while other threads write)."""
        pool.submit(remove_tree, workdir)

    # Completions arrive through a queue: cf.wait() over every pending future locks each of
    # them on every call, quadratic in the number of versions (1 s of 1,000 tiny ones).
    completed: queue.SimpleQueue[cf.Future[fetch.Staged]] = queue.SimpleQueue()
    futures: dict[cf.Future[fetch.Staged], Install] = {}
    ready: list[tuple[Install, fetch.Staged]] = []  # staged, waiting for the next barrier
    barrier = time.monotonic()
    try:
        for i in installs:
            fut = pool.submit(fetch.stage, bucket, i.version, paths, config)
            futures[fut] = i
            fut.add_done_callback(completed.put)
        left = len(futures)
        while left or ready:
            if left:
                due = BATCH_EVERY - (time.monotonic() - barrier) if ready else 0.2
                done = _take(completed, max(due, 0.0))
                left -= len(done)
                stop.check()
                ready += [
                    (futures[f], st) for f in done if (st := _collected(futures[f], f, report))
                ]
            if ready and (not left or time.monotonic() - barrier >= BATCH_EVERY):
                for install, staged in _durable(ready, report):
                    _publish_one(install, staged, paths, report, managed, saver, stop, discard)
                ready, barrier = [], time.monotonic()
    except BaseException as exc:  # a signal, or anything unexpected (a full disk, a bug)
        halt.set()
        for fut in futures:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        _stop_workers(pool, WORKERS_STOP_WITHIN)
        for fut in futures:  # staged but not published (removing a published one's is a no-op)
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                remove_tree(fut.result().workdir)
        _restore(previous, managed, report)
        try:
            saver.save()
        except OSError as again:  # the pending entries on disk mean "reinstall": safe
            if not isinstance(exc, OSError):  # else it is the failure reported below, again
                event(logging.ERROR, "state_not_saved", f"cannot save state: {os_error(again)}")
        raise
    _restore(previous, managed, report)
    pool.shutdown(wait=True)


def _stop_workers(pool: cf.ThreadPoolExecutor, within: float) -> None:
    """Wait, up to `within` seconds, for the pool's threads to end: each notices the stop
    token within a chunk, and the pool was shut down, so none takes new work."""
    deadline = time.monotonic() + within
    for thread in list(pool._threads):
        thread.join(max(0.0, deadline - time.monotonic()))
    if alive := [t.name for t in pool._threads if t.is_alive()]:
        event(
            logging.WARNING,
            "workers_running",
            f"{len(alive)} staging worker(s) still running {within:g}s after the pass ended",
        )


def _take(
    completed: queue.SimpleQueue[cf.Future[fetch.Staged]], timeout: float
) -> list[cf.Future[fetch.Staged]]:
    """Whatever finished, waiting up to `timeout` seconds for the first one."""
    try:
        done = [completed.get(timeout=timeout)]
    except queue.Empty:
        return []
    with contextlib.suppress(queue.Empty):
        while True:
            done.append(completed.get_nowait())
    return done


def _restore(
    previous: dict[str, Managed | None], managed: dict[str, Managed], report: Report
) -> None:
    """Versions not published this pass get their old ownership back."""
    done = set(report.published)
    for vid, before in previous.items():
        if vid in done:
            continue
        if before is None:
            managed.pop(vid, None)
        else:
            managed[vid] = before


def _collected(
    install: Install, fut: cf.Future[fetch.Staged], report: Report
) -> fetch.Staged | None:
    """The staged version, or None after recording why staging failed."""
    v = install.version
    try:
        return fut.result()
    except Interrupted:
        raise
    except SyncError as exc:
        content = isinstance(exc, VersionRejected)
        report.failures.append(Failure(v.model, v.id, str(exc), content))
        event(logging.ERROR, "version_failed", str(exc), model=v.model, version=v.version)
    except OSError as exc:
        _local_failure(report, v.model, v.id, f"{v.id}: staging failed: {os_error(exc)}")
    except Exception as exc:  # a bug must not stop the other versions
        report.failures.append(Failure(v.model, v.id, f"{v.id}: internal error: {exc!r}"))
        logging.getLogger("gcs_model_sync").exception("internal error staging %s", v.id)
    return None


def _durable(
    batch: list[tuple[Install, fetch.Staged]], report: Report
) -> list[tuple[Install, fetch.Staged]]:
    """One durability barrier for every version staged since the last one (a syncfs costs
    ~7 ms whether it flushes one version or a hundred); then they may be renamed into place."""
    if not batch:
        return batch
    try:
        sync_trees([staged.content for _install, staged in batch])
    except OSError as exc:
        for install, staged in batch:
            v = install.version
            _local_failure(report, v.model, v.id, f"{v.id}: cannot sync to disk: {os_error(exc)}")
            remove_tree(staged.workdir)
        return []
    return batch


def _publish_one(
    install: Install,
    staged: fetch.Staged,
    paths: Paths,
    report: Report,
    managed: dict[str, Managed],
    saver: _StateSaver,
    stop: StopToken,
    discard: Callable[[Path], object],
) -> None:
    v = install.version
    target = paths.version_dir(v.model, v.version)
    try:
        stop.check()
        publish.publish(staged.content, target, paths.trash)
    except OSError as exc:
        _local_failure(report, v.model, v.id, f"{target}: cannot publish: {os_error(exc)}")
        return
    finally:
        discard(staged.workdir)
    objects = {e.relpath: e.obj.generation for e in v.entries} if v.form is Form.FOLDER else None
    managed[v.id] = Managed(v.model, v.version, v.fingerprint, staged.nbytes, time.time(), objects)
    report.published.append(v.id)  # before the save: one that fails must not disown it
    saver.changed(renamed_in=target.parent)
    event(
        logging.INFO,
        "published",
        f"published {v.id} ({install.reason}, {progress.human(staged.nbytes)})",
        model=v.model,
        version=v.version,
        bytes=staged.nbytes,
        reason=install.reason,
    )


def _prune(
    plan: Plan, paths: Paths, report: Report, managed: dict[str, Managed], saver: _StateSaver
) -> None:
    if not plan.prunes:
        return
    transport = [f for f in report.failures if not f.content]
    if transport:
        event(
            logging.WARNING,
            "prune_skipped",
            f"not deleting {len(plan.prunes)} version(s): there were listing or download errors",
        )
        return
    if plan.guard:
        report.guard = plan.guard
        event(logging.ERROR, "guard_refused", f"{plan.guard}; nothing deleted")
        return
    held_back = {f.model for f in report.failures}
    for p in plan.prunes:
        m = p.managed
        if m.model in held_back:
            event(
                logging.WARNING,
                "prune_held",
                f"not deleting {m.id}: another version of this model failed this pass",
            )
            continue
        target = paths.version_dir(m.model, m.version)
        try:
            publish.retire(target, paths.trash)
        except OSError as exc:
            _local_failure(report, m.model, m.id, f"{m.id}: cannot prune: {os_error(exc)}")
            continue
        managed.pop(m.id, None)
        report.pruned.append(m.id)
        saver.changed(renamed_in=target.parent)
        event(
            logging.INFO,
            "pruned",
            f"pruned {m.id} ({p.reason})",
            model=m.model,
            version=m.version,
            reason=p.reason,
        )


def os_error(exc: OSError) -> str:
    """`[Errno 30] Read-only file system: '/models/x'` -> `Read-only file system (/models/x)`."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def _local_failure(report: Report, model: str, vid: str, message: str) -> None:
    report.failures.append(Failure(model, vid, message))
    event(logging.ERROR, "local_failure", message)


class _StateSaver:
    """Writes the state file at most once a second during a pass, at its end, and on the way
    out of an interrupted or failed one. Every save that records renames first syncs the
    folders renamed since the last save (one syncfs for all of them, not an fsync per
    version): the state file never names a published version, nor forgets a removed one,
    that a crash could still undo."""

    def __init__(self, paths: Paths, managed: dict[str, Managed], source: str) -> None:
        self.paths, self.managed, self.source = paths, managed, source
        self.dirty = False
        self.renamed: set[Path] = set()  # folders whose entries this pass renamed, unsynced
        self._last = time.monotonic()

    def finish(self) -> None:
        self.save()

    def changed(self, renamed_in: Path) -> None:
        """A version was published or pruned by a rename in folder `renamed_in`."""
        self.renamed.add(renamed_in)
        self.dirty = True
        if time.monotonic() - self._last >= STATE_SAVE_EVERY:
            self.save()

    def save(self) -> None:
        if self.dirty:
            if self.renamed:  # durable first, then recorded
                sync_dirs(self.renamed, self.paths.dest)
                self.renamed.clear()
            save_state(self.paths, self.managed, self.source)
            self.dirty = False
            self._last = time.monotonic()


class _PassStop(StopToken):
    """The caller's stop token, plus the pass's own: setting this one stops the pass's
    workers without stopping the caller (the `run` loop goes on to the next pass)."""

    def __init__(self, parent: StopToken) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return self.parent.is_set() or super().is_set()

    def check(self) -> None:
        self.parent.check()
        super().check()

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._event.wait(min(left, 0.1))  # the parent's event is polled
        return True

    def sleep(self, seconds: float) -> None:
        self.wait(seconds)
        self.check()
