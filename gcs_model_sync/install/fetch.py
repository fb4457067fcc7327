"""Download one version into a private staging folder, verified and extracted, ready to publish.

Nothing here touches a published version: all writes go under DEST/.gcs-model-sync/staging,
which is on the same filesystem as the versions so that publishing is a rename.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from gcs_model_sync import retry, units
from gcs_model_sync.config import Config
from gcs_model_sync.errors import ChecksumMismatch, VersionRejected
from gcs_model_sync.formats import archives, extract
from gcs_model_sync.formats.members import Members
from gcs_model_sync.install import reuse, sources, space
from gcs_model_sync.layout import Entry, Form, RemoteObject
from gcs_model_sync.local.durability import remove_tree
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.plan import filters
from gcs_model_sync.plan.reuse import Reuse
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.source import partials, ranged
from gcs_model_sync.source.remote import Bucket

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Staged:
    version: RemoteVersion
    workdir: Path  # remove after publishing
    content: Path  # the folder that becomes DEST/<model>/<version>
    nbytes: int
    linked: tuple[int, int] = (0, 0)  # files and bytes hard-linked, not downloaded


class _Job(NamedTuple):
    held: space.Reservation
    reuse: Reuse | None  # the files an installed version holds already


def where(bucket: Bucket, version: RemoteVersion) -> str:
    """How errors name a version: its archive object, or its folder in the bucket."""
    first = version.entries[0].obj.name
    if version.form is not Form.FOLDER:
        return f"gs://{bucket.source.bucket}/{first}"
    folder = first[: len(first) - len(version.entries[0].relpath)]
    return f"gs://{bucket.source.bucket}/{folder}"


def stage(
    bucket: Bucket,
    version: RemoteVersion,
    paths: Paths,
    config: Config,
    links: Reuse | None = None,
) -> Staged:
    """Stage a version, linking what `links` names (install/reuse.py); a checksum mismatch
    restarts it from scratch.

    Only that: every request has used its own retry budget already, and retrying the version
    around it would multiply the budget (--retry-attempts squared requests for a lasting 503).
    """
    name = where(bucket, version)
    with reserve(bucket, version, paths, config, name) as held:
        return until_intact(
            lambda: _stage_once(bucket, version, paths, config, _Job(held, links)),
            f"staging {name}",
            bucket,
            config,
            deadline=config.retry_deadline * 4,
        )


def until_intact(
    fn: Callable[[], _T], what: str, bucket: Bucket, config: Config, deadline: float
) -> _T:
    """Run `fn` again from scratch while what it read fails its checksum, within the
    retry budget (see stage())."""
    return retry.call(
        fn,
        what=what,
        budget=retry.Budget(config.retry_attempts, deadline, bucket.stop),
        retry_on=lambda exc: isinstance(exc, ChecksumMismatch),
        gave_up=lambda exc, how: ChecksumMismatch(f"{exc}; {how}"),
    )


def write_object(bucket: Bucket, obj: RemoteObject, writer: extract.Writer, rel: str) -> None:
    """One object into `writer` as `rel` (decoded when stored gzip-encoded), its checksum
    checked over every byte."""
    with bucket.open(obj) as reader:
        content = reader.content()  # the reader itself unless stored gzip-encoded
        writer.file(rel, content)
        content.verify()


def sliced(version: RemoteVersion, config: Config) -> tuple[RemoteObject, ...]:
    """The objects of a version read by parallel ranges into partial files."""
    if version.form is Form.FOLDER:
        return tuple(e.obj for e in version.entries if ranged.wanted(e.obj, config))
    obj = version.objects[0]
    return (obj,) if ranged.wanted(obj, config, archive=True) else ()


def _need(version: RemoteVersion, big: tuple[RemoteObject, ...]) -> int:
    """Its expected size, plus a sliced archive's stored size: on disk while it extracts."""
    return version.expected_size + (version.size if big and version.form is not Form.FOLDER else 0)


def lacking(version: RemoteVersion, paths: Paths, config: Config) -> int:
    """The bytes staging the version still needs: what reserve() claims, less what its
    partial downloads hold already (a full disk frees this much, see room.make_room)."""
    big = sliced(version, config)
    return max(0, _need(version, big) - partials.held(paths.partial, big))


def reserve(
    bucket: Bucket, version: RemoteVersion, paths: Paths, config: Config, name: str
) -> space.Reservation:
    """Claim the version's expected size (extracted where its archive states it, else stored:
    every form extracts while it downloads; rare zips spool, see sources.py) from the budget that
    workers share, or raise InsufficientSpace before a byte is read. Held until its staging
    is complete (its bytes are on disk then, and publishing is a rename) or removed.

    A sliced archive is on disk whole while it extracts: its stored size counts too. What
    the version's partial downloads hold already is not needed again. When even the rest
    does not fit, those partials are removed: kept, they would take the space the version
    needs in every later pass, and a pod restarted mid-way through a big model on a small
    disk would never install it."""
    big = sliced(version, config)
    need = _need(version, big)
    budget = space.budget_for(paths.staging)
    try:
        return budget.reserve(
            paths.staging,
            need,
            config.min_free_space,
            name,
            on_disk=lambda: partials.held(paths.partial, big),
        )
    except space.NoRoom as exc:
        if exc.alone:  # it would fit once the other versions being staged are in place
            raise
        for obj in big:
            if freed := partials.remove(paths.partial, obj):
                event(
                    logging.WARNING,
                    "partial_removed",
                    f"gs://{bucket.source.bucket}/{obj.name}: removed the partial download "
                    f"({units.human(freed)}): its version does not fit even counting it",
                    object=obj.name,
                    bytes=freed,
                )
        raise


def _stage_once(
    bucket: Bucket, version: RemoteVersion, paths: Paths, config: Config, job: _Job
) -> Staged:
    name = where(bucket, version)
    # A short, readable, unique name: the version id may be as long as a path allows.
    label = version.id.replace("/", "_")[-40:]
    workdir = paths.staging / f"{label}.{uuid.uuid4().hex[:12]}"
    tree = workdir / "tree"
    writer = extract.Writer(
        tree, extract.Limits(config.max_version_size, name), _members(version, config)
    )
    limits = writer.limits  # bytes written count against the reservation, not twice
    job.held.written = lambda: limits.written  # linked files too: they need no room
    try:
        extractor = archives.REGISTRY.extractor(version.form)
        left = version.entries
        if extractor is None:
            left = reuse.link_unchanged(job.reuse, version, paths, writer)
            writer = _folder(bucket, left, paths, config, writer)
        else:
            with sources.archive(bucket, version.objects[0], paths, config, writer) as source:
                writer = extractor.extract(source, writer)
        if writer.skipped and not any(tree.iterdir()):
            raise VersionRejected(f"{name}: --include/--exclude leave out every member")
        # A folder form's objects are the version's files as uploaded: never stripped.
        strip = None if version.form is Form.FOLDER else version.version
        content = extract.content_root(tree, name, strip)  # made durable by workers.py
    except BaseException:
        remove_tree(workdir)
        raise
    fetched = sum(e.obj.size for e in left)
    linked = (len(version.entries) - len(left), version.size - fetched)
    return Staged(version, workdir, content, writer.limits.written, linked)


def _members(version: RemoteVersion, config: Config) -> Members | None:
    """What the Writer leaves out and refuses: the members of an archive the filters leave
    out (a folder form's objects were left out of the plan already), and pickles."""
    rules = config.filters
    if not rules.active and not config.refuse_pickle:
        return None
    keep = None
    if rules.active and version.form is not Form.FOLDER:

        def keep(rel: str) -> bool:
            return rules.keeps(filters.member_path(version.model, version.version, rel))

    return Members(keep, config.refuse_pickle)


def _folder(
    bucket: Bucket, entries: tuple[Entry, ...], paths: Paths, config: Config, writer: extract.Writer
) -> extract.Writer:
    for entry in sorted(entries, key=lambda e: e.relpath):
        if ranged.wanted(entry.obj, config):
            with sources.by_ranges(bucket, entry.obj, paths, config) as download:
                writer.adopt(entry.relpath, download.wait())
            continue
        write_object(bucket, entry.obj, writer, entry.relpath)
    return writer
