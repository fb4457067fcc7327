"""Carry out the model-level file changes deletions.decide() allows (`--model-files`).

Each file is downloaded and checked into staging, synced, then renamed into DEST/<model>/ in
one step, so a server reading config.pbtxt sees the old file or the new one. Ownership of
what was staged is saved as pending before any rename (a crash leaves "rewrite", never a
file we could no longer tell from a hand-made one). A new file is linked into place, never
over something that appeared there since the scan.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import tempfile
from pathlib import Path

from gcs_model_sync.config import Config
from gcs_model_sync.errors import SyncError
from gcs_model_sync.failures import Step, classify
from gcs_model_sync.formats import extract
from gcs_model_sync.install import fetch, publish
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.local.durability import remove_tree, sync_trees
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan.files_plan import FileChange
from gcs_model_sync.report import Report, local_failure
from gcs_model_sync.source.remote import Bucket


def apply(run: Pass, changes: tuple[FileChange, ...]) -> None:
    writes = [c for c in changes if not c.removes]
    if writes:
        _write_all(run, writes)
    for c in changes:
        if c.removes:
            _remove(run, c)


def _write_all(run: Pass, writes: list[FileChange]) -> None:
    paths, report, ledger = run.paths, run.report, run.ledger
    workdir = Path(tempfile.mkdtemp(prefix="model-files.", dir=paths.staging))
    try:
        staged = _stage_all(run, writes, workdir)
        previous = ledger.files_pending(staged)
        try:
            try:
                sync_trees([workdir])
            except OSError as exc:
                for c in staged:
                    local_failure(report, exc, c.model, c.id, f"{c.id}: cannot sync to disk")
                staged = {}
            for c, (path, nbytes) in staged.items():
                if _place(c, path, paths, report):
                    ledger.file_written(c, nbytes)
                    event(
                        logging.INFO,
                        "file_written",
                        f"wrote {c.id} ({c.reason})",
                        model=c.model,
                        file=c.name,
                        reason=c.reason,
                    )
        finally:
            ledger.files_restore(previous)
            with contextlib.suppress(OSError):  # also on the way out of a stopped pass
                ledger.save()
    finally:
        remove_tree(workdir)


def _stage_all(
    run: Pass, writes: list[FileChange], workdir: Path
) -> dict[FileChange, tuple[Path, int]]:
    """Every file downloaded and checked into `workdir`, on the pass's workers."""
    bucket, report = run.bucket, run.report
    staged: dict[FileChange, tuple[Path, int]] = {}
    with cf.ThreadPoolExecutor(min(run.config.workers, len(writes)), "file") as pool:
        futures = {
            pool.submit(_stage, bucket, c, workdir / str(n), run.config): c
            for n, c in enumerate(writes)
        }
        for fut in cf.as_completed(futures):
            c = futures[fut]
            try:
                staged[c] = fut.result()
            except SyncError as exc:
                report.fail(classify(exc, Step.FILE), c.model, c.id, str(exc))
                event(logging.ERROR, "file_failed", str(exc), model=c.model, file=c.name)
            except OSError as exc:
                local_failure(report, exc, c.model, c.id, f"{c.id}: staging failed")
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
        publish.place_file(staged, target, paths.dest, new=c.reason in ("new", "missing locally"))
    except FileExistsError:
        event(
            logging.WARNING,
            "file_left",
            f"{target}: appeared since the scan and was not written by us; left alone",
            path=str(target),
        )
        return False
    except OSError as exc:
        local_failure(report, exc, c.model, c.id, f"{target}: cannot write")
        return False
    return True


def _remove(run: Pass, c: FileChange) -> None:
    target = run.paths.dest / c.model / c.name
    try:
        publish.remove_file(target, run.paths.dest)
    except OSError as exc:
        local_failure(run.report, exc, c.model, c.id, f"{target}: cannot remove")
        return
    run.ledger.file_removed(c)
    event(
        logging.INFO,
        "file_removed",
        f"removed {c.id} ({c.reason})",
        model=c.model,
        file=c.name,
        reason=c.reason,
    )
