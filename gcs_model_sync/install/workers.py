"""Stage every install on a pool of workers and publish each as its batch is durable.

Ownership is written as "pending" before any publish (a crash leaves "reinstall", never an
orphan); versions staged within BATCH_EVERY share one durability barrier; any way out of
the pass (a signal, a full disk at a state save, a bug) stops its workers first.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import queue
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from gcs_model_sync import units
from gcs_model_sync.errors import (
    Interrupted,
    ManifestRefused,
    SyncError,
    VerifyRefused,
    os_error,
)
from gcs_model_sync.failures import classify
from gcs_model_sync.install import fetch, publish
from gcs_model_sync.install.signature import Manifests
from gcs_model_sync.install.verify import Verify
from gcs_model_sync.local.durability import remove_tree, sync_trees
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan import reuse
from gcs_model_sync.plan.actions import Install
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.report import Report, local_failure
from gcs_model_sync.retry import StopToken

WORKERS_STOP_WITHIN = 2.0  # seconds a pass that ends early waits for its downloads to stop
# Versions staged within this many seconds share one durability barrier (a syncfs commits the
# journal and stalls every other thread's metadata writes: 1,000 tiny versions, one each, took
# seconds). TF Serving polls once a second, so the wait is never seen.
BATCH_EVERY = 0.1


def install_all(
    run: Pass,
    installs: tuple[Install, ...],
    check: Verify | None = None,
    labels: Mapping[str, str] | None = None,
    pinned: Manifests | None = None,
) -> None:
    """`pinned` (the manifests beside each version), then `check` (--verify) run on each
    staged version, on its worker, before it may be published; `labels` say how the
    `published` line names each (new, resumed, replaced)."""
    if not installs:
        return
    config, stop, bucket, report, ledger = run.config, run.stop, run.bucket, run.report, run.ledger
    previous = ledger.pending(i.version for i in installs)
    # The workers mind a stop of their own, set when the pass ends early for any reason (a
    # full disk at a state save, a bug): none of them may go on downloading into staging the
    # next pass cleans. The bucket is this pass's alone; a straggler keeps seeing this token.
    halt = bucket.stop = PassStop(stop)
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
            fut = pool.submit(_stage, run, i.version, check, pinned)
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
                    label = (labels or {}).get(install.version.id, install.reason)
                    _publish_one(run, install, staged, discard, label)
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
        ledger.restore(previous)
        try:
            ledger.save()
        except OSError as again:  # the pending entries on disk mean "reinstall": safe
            if not isinstance(exc, OSError):  # else it is the failure reported below, again
                event(logging.ERROR, "state_not_saved", f"cannot save state: {os_error(again)}")
        raise
    ledger.restore(previous)
    pool.shutdown(wait=True)


def _stage(
    run: Pass, v: RemoteVersion, check: Verify | None, pinned: Manifests | None
) -> fetch.Staged:
    """Stage a version, check its manifests, then --verify it; a refused one is removed and
    remembered."""
    bucket, report = run.bucket, run.report
    staged = fetch.stage(bucket, v, run.paths, run.config, reuse.find(run.plan.reuse, v.id))
    try:
        if pinned is not None:
            pinned.check(bucket, v, staged.content, staged.workdir)
        if check is not None:
            where = fetch.where(bucket, v)
            outcome = check.check(v.model, v.version, staged.content, where, bucket.stop)
            report.verify_runs.append(outcome)
    except (ManifestRefused, VerifyRefused) as exc:
        if isinstance(exc, VerifyRefused):
            report.verify_runs.append(exc.outcome)
        report.refusals[v.id] = (v.fingerprint, str(exc))
        remove_tree(staged.workdir)
        raise
    except BaseException:
        remove_tree(staged.workdir)
        raise
    return staged


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
        report.fail(classify(exc), v.model, v.id, str(exc))
        event(logging.ERROR, "version_failed", str(exc), model=v.model, version=v.version)
    except OSError as exc:
        local_failure(report, exc, v.model, v.id, f"{v.id}: staging failed")
    except Exception as exc:  # a bug must not stop the other versions
        report.fail(classify(exc), v.model, v.id, f"{v.id}: internal error: {exc!r}")
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
            local_failure(report, exc, v.model, v.id, f"{v.id}: cannot sync to disk")
            remove_tree(staged.workdir)
        return []
    return batch


def _publish_one(
    run: Pass,
    install: Install,
    staged: fetch.Staged,
    discard: Callable[[Path], object],
    label: str,
) -> None:
    v = install.version
    target = run.paths.version_dir(v.model, v.version)
    try:
        run.stop.check()
        publish.publish(staged.content, target, run.paths.trash)
    except OSError as exc:
        local_failure(run.report, exc, v.model, v.id, f"{target}: cannot publish")
        return
    finally:
        discard(staged.workdir)
    run.ledger.published(v, staged.nbytes, target.parent)
    files, linked = staged.linked
    event(
        logging.INFO,
        "published",
        f"published {v.id} ({label}, download {units.human(v.size - linked)}, "
        f"on disk {units.human(staged.nbytes)}"
        + (f", {files} file(s) linked from an installed version" if files else "")
        + ")",
        model=v.model,
        version=v.version,
        bytes=staged.nbytes,
        download_bytes=v.size - linked,
        linked_files=files,
        linked_bytes=linked,
        reason=label,
    )


class PassStop(StopToken):
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
