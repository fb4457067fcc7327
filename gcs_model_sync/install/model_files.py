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
from gcs_model_sync.logs import event
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.plan.files_plan import FileChange
from gcs_model_sync.report import local_failure
from gcs_model_sync.source.remote import Bucket


def apply(run: Pass, changes: tuple[FileChange, ...]) -> None:
    """Stage and sync every write, own the staged files as pending, then carry every change
    out (writes first) in one loop; a file that fails is reported and the rest go on."""
    ledger = run.ledger
    workdir = Path(tempfile.mkdtemp(prefix="model-files.", dir=run.paths.staging))
    try:
        staged = _staged(run, [c for c in changes if not c.removes], workdir)
        previous = ledger.files_pending(staged) if staged else {}
        try:
            for c in sorted(changes, key=lambda c: c.removes):
                if c.removes or c in staged:
                    _carry_out(run, c, staged.get(c))
        finally:
            ledger.files_restore(previous)
            with contextlib.suppress(OSError):  # also on the way out of a stopped pass
                ledger.save()
    finally:
        remove_tree(workdir)


def _staged(
    run: Pass, writes: list[FileChange], workdir: Path
) -> dict[FileChange, tuple[Path, int]]:
    if not writes:
        return {}
    staged = _stage_all(run, writes, workdir)
    try:
        sync_trees([workdir])
    except OSError as exc:
        for c in staged:
            local_failure(run.report, exc, c.model, c.id, f"{c.id}: cannot sync to disk")
        return {}
    return staged


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


def _carry_out(run: Pass, c: FileChange, staged: tuple[Path, int] | None) -> None:
    """One change in DEST: the staged file renamed into DEST/<model>/ (a new one only where
    nothing appeared since the scan), or, with `staged` None, the file removed."""
    target = run.paths.dest / c.model / c.name
    try:
        new = c.reason in ("new", "missing locally")
        publish.change_file(target, run.paths.dest, staged[0] if staged else None, new)
    except FileExistsError:
        event(
            logging.WARNING,
            "file_left",
            f"{target}: appeared since the scan and was not written by us; left alone",
            path=str(target),
        )
        return
    except OSError as exc:
        doing = "cannot remove" if staged is None else "cannot write"
        local_failure(run.report, exc, c.model, c.id, f"{target}: {doing}")
        return
    if staged is None:
        run.ledger.file_removed(c)
        name, done = "file_removed", "removed"
    else:
        run.ledger.file_written(c, staged[1])
        name, done = "file_written", "wrote"
    event(
        logging.INFO,
        name,
        f"{done} {c.id} ({c.reason})",
        model=c.model,
        file=c.name,
        reason=c.reason,
    )
