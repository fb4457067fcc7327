"""Where staging reads an object from: a big one by parallel ranges into a partial file
(resumable across passes), an archive as its format's extractor asks for it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from gcs_model_sync import diskio
from gcs_model_sync.config import Config
from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import extract
from gcs_model_sync.formats.extractor import ArchiveSource
from gcs_model_sync.formats.stream import Readable
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.logs import event
from gcs_model_sync.source import ranged
from gcs_model_sync.source.reads import CHUNK, GzipDecoded, ObjectReader
from gcs_model_sync.source.remote import Bucket


@contextlib.contextmanager
def by_ranges(
    bucket: Bucket, obj: RemoteObject, paths: Paths, config: Config
) -> Iterator[ranged.Download]:
    """A big object by parallel ranges into DEST/.gcs-model-sync/partial. Removed once used
    (or refused: a corrupt archive is not kept); kept, with its progress, when the pass stops
    first, for the next pass to resume."""
    download = ranged.Download(bucket, obj, paths.partial, config.slice_size)
    if download.resumed:
        event(
            logging.INFO,
            "resumed",
            f"gs://{bucket.source.bucket}/{obj.name}: resuming, {download.resumed} of "
            f"{obj.size} bytes already on disk",
            object=obj.name,
            bytes=download.resumed,
        )
    with download:  # on the way out: readers stopped, progress recorded if the file is left
        try:
            yield download
        except VersionRejected:
            download.discard()
            raise
        download.discard()


@contextlib.contextmanager
def archive(
    bucket: Bucket, obj: RemoteObject, paths: Paths, config: Config, writer: extract.Writer
) -> Iterator[ArchiveSource]:
    """The archive object for its format's extractor: read by parallel ranges into a partial
    file when big, else streamed (and spooled beside `writer`'s tree if the format needs a
    seekable copy)."""
    if ranged.wanted(obj, config, archive=True):
        with by_ranges(bucket, obj, paths, config) as download:
            yield _Sliced(download)
        return
    yield _Streamed(bucket, obj, writer.root.parent / "archive", writer.limits)


class _Sliced:
    """A big archive: its bytes as the parallel ranges land, and the finished file."""

    def __init__(self, download: ranged.Download) -> None:
        self.download = download

    def stream(self, extract_all: Callable[[Readable], None]) -> None:
        _checked(self.download, lambda: extract_all(self.download))

    @contextlib.contextmanager
    def local(self) -> Iterator[Path]:
        yield self.download.wait()  # removed with the partial download (see by_ranges)


class _Streamed:
    """An archive read in one request (decoded when stored gzip-encoded), spooled to `spool`
    only when a seekable copy is asked for."""

    def __init__(
        self, bucket: Bucket, obj: RemoteObject, spool: Path, limits: extract.Limits
    ) -> None:
        self.bucket, self.obj, self.spool, self.limits = bucket, obj, spool, limits

    def stream(self, extract_all: Callable[[Readable], None]) -> None:
        with self.bucket.open(self.obj) as reader:
            content = reader.content()  # a .tar.gz stored gzip-encoded (`gsutil -Z`) is gzip twice
            _checked(content, lambda: extract_all(content))

    @contextlib.contextmanager
    def local(self) -> Iterator[Path]:
        limits, name = self.limits, self.limits.where
        with self.bucket.open(self.obj) as reader, open(self.spool, "wb") as out:
            content = reader.content()
            spooled = 0
            try:
                while chunk := content.read(CHUNK):
                    out.write(chunk)
                    spooled += len(chunk)
                    if content is not reader and spooled > limits.max_bytes:  # a gzip bomb
                        raise VersionRejected(
                            f"{name}: decodes to more than --max-version-size "
                            f"{limits.max_bytes} bytes"
                        )
            except OSError as exc:
                diskio.raise_space(exc, name)
                raise
            content.verify()
        try:
            yield self.spool
        finally:
            self.spool.unlink(missing_ok=True)  # the archive never outlives its extraction


def _checked(
    content: ObjectReader | GzipDecoded | ranged.Download, extract_all: Callable[[], None]
) -> None:
    """Extract, then verify the object's checksum over every byte, read or not (and, for an
    object stored gzip-encoded, decode the rest, so that gzip's own trailer is checked).

    When extraction calls the archive corrupt, a checksum failure is the better explanation
    (bytes damaged in transit), and that one is retried.
    """
    reader = content.reader if isinstance(content, GzipDecoded) else content
    try:
        extract_all()
    except VersionRejected:
        reader.verify()
        raise
    content.verify()
