"""Staging one version in-process against the emulator: what only fetch decides."""

from __future__ import annotations

import gzip
import shutil
from enum import StrEnum
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import InsufficientSpace, VersionRejected
from gcs_model_sync.formats import archives, extract, zipformat
from gcs_model_sync.formats.archives import Archive, Registry
from gcs_model_sync.formats.extractor import ArchiveSource
from gcs_model_sync.install import fetch, space
from gcs_model_sync.layout import Entry, Form, RemoteObject
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.phases import snapshot
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source import partials
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket
from tests.support.models import make_piped_zip, sample_files


def _spy_on_zip_files(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The archive files extract_zip is given (the zips that needed random access)."""
    spooled: list[Path] = []
    real = zipformat.extract_zip

    def spy(archive: Path, writer: extract.Writer, where: str) -> None:
        spooled.append(archive)
        real(archive, writer, where)

    monkeypatch.setattr(zipformat, "extract_zip", spy)
    return spooled


def _tree(staged: fetch.Staged) -> dict[str, bytes]:
    root = staged.content
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_spooled_zip_is_deleted_once_extracted(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's W3 rule: no archive copy outlives its extraction, even before publishing."""
    files = sample_files("spooled", size=100_000)
    bucket.put("models/m/0003.zip", make_piped_zip(files, "0003"))
    spooled = _spy_on_zip_files(monkeypatch)
    staged, _ = _stage_only(emulator, bucket, dest, monkeypatch)

    assert len(spooled) == 1  # it took the spooled path
    assert not spooled[0].exists()
    assert [p.name for p in staged.workdir.iterdir()] == ["tree"]
    assert _tree(staged) == files


def _stage_only(
    emulator: Emulator,
    bucket: SeededBucket,
    dest: Path,
    monkeypatch: pytest.MonkeyPatch,
    **options: Any,
) -> tuple[fetch.Staged, Bucket]:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    config = Config(
        source=Source.parse(f"gs://{bucket.name}/models"), dest=dest, settle=0, **options
    )
    stop = StopToken()
    (install,) = snapshot.inspect(config, stop).plan.installs
    paths = Paths(dest)
    paths.ensure()
    remote = Bucket(config, stop)
    return fetch.stage(remote, install.version, paths, config), remote


def _put_gzip_encoded(bucket: SeededBucket, key: str, stored: bytes) -> None:
    blob = bucket.bucket.blob(key)
    blob.content_encoding = "gzip"
    blob.upload_from_string(stored)


def test_a_gzip_encoded_zip_that_must_be_spooled_is_decoded_into_the_spool(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = sample_files("spooled-gz", size=100_000)
    _put_gzip_encoded(bucket, "models/m/0003.zip", gzip.compress(make_piped_zip(files, "0003")))

    staged, _ = _stage_only(emulator, bucket, dest, monkeypatch)

    assert _tree(staged) == files


def test_a_spooled_gzip_encoded_zip_is_capped_by_max_version_size_as_it_decodes(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gzip bomb must not fill the disk with its spooled copy before extraction counts."""
    files = {"zeros.bin": bytes(8 * 1024 * 1024)}
    stored = gzip.compress(make_piped_zip(files))  # ~8 KB stored, 8 MB decoded
    _put_gzip_encoded(bucket, "models/m/0003.zip", stored)

    with pytest.raises(VersionRejected, match=r"0003.zip: decodes to more than --max-version-size"):
        _stage_only(emulator, bucket, dest, monkeypatch, max_version_size=2 * 1024 * 1024)
    assert list(Paths(dest).staging.iterdir()) == []


def test_a_folder_object_marked_gzip_that_does_not_decode_rejects_the_version(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put_folder("models/m/0002", sample_files("ok"))
    _put_gzip_encoded(bucket, "models/m/0002/assets/vocab.txt", b"not gzip at all\n" * 64)

    with pytest.raises(VersionRejected) as info:
        _stage_only(emulator, bucket, dest, monkeypatch)
    assert str(info.value).startswith(
        f"gs://{bucket.name}/models/m/0002/assets/vocab.txt: stored with Content-Encoding gzip "
        "but the body does not decode ("
    )
    assert list(Paths(dest).staging.iterdir()) == []


def test_a_sliced_zip_that_needs_random_access_is_extracted_from_its_download(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second download and no second copy: the ranges' file is the archive zipfile reads."""
    files = sample_files("sliced", size=3_000_000)
    stored = make_piped_zip(files, "0003")  # stored members with descriptors: Unstreamable
    bucket.put("models/m/0003.zip", stored)
    spooled = _spy_on_zip_files(monkeypatch)
    staged, remote = _stage_only(
        emulator, bucket, dest, monkeypatch, slice_size=1024 * 1024, slice_threshold=0
    )

    assert [a.parent for a in spooled] == [Paths(dest).partial]
    assert remote.counters.bytes_read == len(stored)
    assert remote.counters.object_reads == len(stored) // (1024 * 1024) + 1
    assert list(Paths(dest).partial.iterdir()) == []
    assert _tree(staged) == files


def test_a_partial_crowded_out_only_by_versions_being_staged_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Removed only when the version would not fit even alone: versions staged at the same
    time are published or fail, and the next pass may find the room this one lacked."""
    mib = 1024 * 1024
    paths = Paths(tmp_path / "dest")
    paths.ensure()
    big = RemoteObject("models/m/1/w.bin", 1, 10 * mib, crc32c="AAAAAA==")
    version = RemoteVersion(
        "m", "1", Form.FOLDER, (Entry(big, "m", "1", Form.FOLDER, "w.bin"),), ""
    )
    config = Config(Source.parse("gs://bkt/models"), paths.dest, slice_size=mib, slice_threshold=0)
    paths.partial.mkdir(exist_ok=True)
    with open(paths.partial / partials.key(big), "wb") as f:
        f.truncate(big.size)
        f.write(b"x" * 4 * mib)
    free = [8 * mib]
    monkeypatch.setattr(
        shutil, "disk_usage", lambda _p: SimpleNamespace(total=10**9, used=0, free=free[0])
    )
    bucket: Any = SimpleNamespace(source=config.source)
    name = "gs://bkt/models/m/1/"

    with space.budget_for(paths.staging).reserve(paths.staging, 5 * mib, 0, "gs://b/x.zip"):
        with pytest.raises(InsufficientSpace):  # 6 MiB lacking, 8 free, 5 promised elsewhere
            fetch.reserve(bucket, version, paths, config, name)
        assert partials.held(paths.partial, [big]) >= 4 * mib
    free[0] = 5 * mib
    with pytest.raises(InsufficientSpace):  # 6 MiB lacking, 5 free: never fits
        fetch.reserve(bucket, version, paths, config, name)
    assert partials.held(paths.partial, [big]) == 0
    free[0] = 10 * mib
    fetch.reserve(bucket, version, paths, config, name).release()


class _Toy(StrEnum):
    TOY = "toy"


class _ToyExtractor:
    """A toy archive format: the object's bytes are one file, `payload`."""

    def extract(self, source: ArchiveSource, writer: extract.Writer) -> extract.Writer:
        source.stream(lambda content: writer.file("payload", content))
        return writer

    def tail_start(self, size: int) -> int | None:
        return None

    def stated_size(self, tail: bytes) -> int | None:
        return None


TOY = _ToyExtractor()  # the registry line names it as `tests.install.test_fetch:TOY`


@pytest.mark.parametrize("sliced", [False, True])
def test_a_format_registered_only_in_the_registry_is_listed_and_staged(
    emulator: Emulator,
    bucket: SeededBucket,
    dest: Path,
    monkeypatch: pytest.MonkeyPatch,
    sliced: bool,
) -> None:
    """One registry line is all a new format needs beside its extractor: layout recognises
    its suffix and fetch hands its bytes (streamed or by parallel ranges) to its extractor."""
    toy = Archive(cast(Form, _Toy.TOY), ("toy",), "tests.install.test_fetch:TOY")
    monkeypatch.setattr(archives, "REGISTRY", Registry((*archives.FORMATS, toy)))
    payload = b"toy bytes " * 300_000
    bucket.put("models/m/0004.toy", payload)
    slicing: dict[str, Any] = {"slice_size": 1024 * 1024, "slice_threshold": 0} if sliced else {}

    staged, remote = _stage_only(emulator, bucket, dest, monkeypatch, **slicing)

    assert staged.version.form == "toy"
    assert _tree(staged) == {"payload": payload}
    assert remote.counters.bytes_read == len(payload)
