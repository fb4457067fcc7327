"""Carry out the model-level file changes deletions.decide() allows (`--model-files`).

Each file is downloaded and checked into staging, synced, then renamed into DEST/<model>/ in
one step, so a server reading config.pbtxt sees the old file or the new one. Ownership is
saved as pending before any rename (a crash leaves "rewrite", never a file we could no longer
tell from a hand-made one). A new file is linked into place, never over something that
appeared there since the scan.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import uuid
from pathlib import Path

from gcs_model_sync import extract, fetch, safepath
from gcs_model_sync.config import Config
from gcs_model_sync.durability import remove_tree, sync_trees
from gcs_model_sync.errors import SyncError, os_error
from gcs_model_sync.files_plan import FileChange
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.logs import event
from gcs_model_sync.paths import Paths, make_dirs
from gcs_model_sync.remote import Bucket
from gcs_model_sync.report import FailureKind, Report, local_failure
from gcs_model_sync.saver import StateSaver
from gcs_model_sync.state import PENDING_FILE, ManagedFile, State


def apply(
    changes: tuple[FileChange, ...],
    config: Config,
    paths: Paths,
    bucket: Bucket,
    report: Report,
    state: State,
    saver: StateSaver,
) -> None:
    writes = [c for c in changes if not c.removes]
    if writes:
        _write_all(writes, config, paths, bucket, report, state, saver)
    for c in changes:
        if c.removes:
            _remove(c, paths, report, state, saver)


def _write_all(
    writes: list[FileChange],
    config: Config,
    paths: Paths,
    bucket: Bucket,
    report: Report,
    state: State,
    saver: StateSaver,
) -> None:
    previous = {c.id: state.files.get(c.id) for c in writes}
    for c in writes:
        state.files[c.id] = ManagedFile(c.model, c.name, PENDING_FILE)
    saver.dirty = True
    saver.save()
    workdir = paths.staging / f"model-files.{uuid.uuid4().hex[:12]}"
    workdir.mkdir()
    try:
        staged = _stage_all(writes, config, paths, bucket, workdir, report)
        try:
            sync_trees([workdir])
        except OSError as exc:
            for c in staged:
                local_failure(
                    report, c.model, c.id, f"{c.id}: cannot sync to disk: {os_error(exc)}"
                )
            staged = {}
        for c, (path, nbytes) in staged.items():
            assert c.obj is not None
            if _place(c, path, paths, report):
                state.files[c.id] = ManagedFile(c.model, c.name, c.obj.generation, nbytes)
                report.files_written.append(c.id)
                saver.changed(renamed_in=paths.dest / c.model)
                event(
                    logging.INFO,
                    "file_written",
                    f"wrote {c.id} ({c.reason})",
                    model=c.model,
                    file=c.name,
                    reason=c.reason,
                )
    finally:
        for fid, before in previous.items():  # not written: its old ownership back
            if fid in report.files_written:
                continue
            if before is None:
                state.files.pop(fid, None)
            else:
                state.files[fid] = before
            saver.dirty = True  # the pending entry on disk must not outlive the pass
        remove_tree(workdir)
        with contextlib.suppress(OSError):  # also on the way out of a stopped pass
            saver.save()


def _stage_all(
    writes: list[FileChange],
    config: Config,
    paths: Paths,
    bucket: Bucket,
    workdir: Path,
    report: Report,
) -> dict[FileChange, tuple[Path, int]]:
    """Every file downloaded and checked into `workdir`, on the pass's workers."""
    staged: dict[FileChange, tuple[Path, int]] = {}
    with cf.ThreadPoolExecutor(min(config.workers, len(writes)), "file") as pool:
        futures = {
            pool.submit(_stage, bucket, c, workdir / str(n), config): c
            for n, c in enumerate(writes)
        }
        for fut in cf.as_completed(futures):
            c = futures[fut]
            try:
                staged[c] = fut.result()
            except SyncError as exc:
                report.fail(FailureKind.REMOTE, c.model, c.id, str(exc))
                event(logging.ERROR, "file_failed", str(exc), model=c.model, file=c.name)
            except OSError as exc:
                local_failure(report, c.model, c.id, f"{c.id}: staging failed: {os_error(exc)}")
    bucket.stop.check()
    return staged


def _stage(bucket: Bucket, c: FileChange, slot: Path, config: Config) -> tuple[Path, int]:
    assert c.obj is not None
    obj: RemoteObject = c.obj
    name = f"gs://{bucket.source.bucket}/{obj.name}"

    def once() -> tuple[Path, int]:
        remove_tree(slot)
        writer = extract.Writer(slot, extract.Limits(config.max_version_size, name))
        fetch.write_object(bucket, obj, writer, c.name)
        return slot / c.name, writer.limits.written

    return fetch.until_intact(once, f"downloading {name}", bucket, config, config.retry_deadline)


def _place(c: FileChange, staged: Path, paths: Paths, report: Report) -> bool:
    """Rename a staged file into DEST/<model>/; a new one only where nothing appeared since."""
    target = paths.dest / c.model / c.name
    try:
        safepath.check_parent(paths.dest, target)  # the entry itself is replaced, not followed
        make_dirs(target.parent)
        if c.reason in ("new", "missing locally"):
            os.link(staged, target)  # fails rather than replace what someone put there
        else:
            os.replace(staged, target)
    except FileExistsError:
        event(
            logging.WARNING,
            "file_left",
            f"{target}: appeared since the scan and was not written by us; left alone",
            path=str(target),
        )
        return False
    except OSError as exc:
        local_failure(report, c.model, c.id, f"{target}: cannot write: {os_error(exc)}")
        return False
    return True


def _remove(c: FileChange, paths: Paths, report: Report, state: State, saver: StateSaver) -> None:
    target = paths.dest / c.model / c.name
    try:
        safepath.check_parent(paths.dest, target)  # unlink() removes a link, not its target
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
    except OSError as exc:
        local_failure(report, c.model, c.id, f"{target}: cannot remove: {os_error(exc)}")
        return
    state.files.pop(c.id, None)
    report.files_removed.append(c.id)
    saver.changed(renamed_in=target.parent)
    event(
        logging.INFO,
        "file_removed",
        f"removed {c.id} ({c.reason})",
        model=c.model,
        file=c.name,
        reason=c.reason,
    )
