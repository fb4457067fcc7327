"""Object reads: gzip-encoded objects decoded and their stored bytes checked, damage told
from bodies that do not decode, and resumes whose Range is ignored."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import ChecksumMismatch, VersionRejected
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.reads import CHUNK, GzipDecoded, ObjectReader
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.gcs import Bucket as SeededBucket


def _reading(
    url: str, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Bucket, dict[str, RemoteObject]]:
    """A Bucket talking to `url` (the emulator or a fault proxy) and its listed objects."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    config = Config(source=Source.parse(f"gs://{bucket.name}/m"), dest=tmp_path, retry_deadline=20)
    remote = Bucket(config, StopToken())
    return remote, {o.name: o for o in remote.list_objects().objects}


def _read_all(content: ObjectReader | GzipDecoded) -> None:
    while content.read(CHUNK):
        pass


def put_gzip_encoded(bucket: SeededBucket, key: str, data: bytes) -> bytes:
    """What `gsutil cp -Z` stores: gzip bytes, marked `Content-Encoding: gzip`."""
    stored = gzip.compress(data)
    blob = bucket.bucket.blob(key)
    blob.content_encoding = "gzip"
    blob.upload_from_string(stored, content_type="text/plain")
    return stored


def test_a_gzip_encoded_object_reads_decoded_and_its_stored_bytes_are_checked(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vocab = b"".join(b"token-%d\n" % i for i in range(300_000))  # 3.6 MB, a few hundred KB stored
    stored = put_gzip_encoded(bucket, "m/0001/vocab.txt", vocab)
    remote, objects = _reading(emulator.url, bucket, tmp_path, monkeypatch)
    obj = objects["m/0001/vocab.txt"]
    assert (obj.encoding, obj.size) == ("gzip", len(stored))

    with remote.open(obj) as reader:
        content = reader.content()
        chunks = []
        while chunk := content.read(CHUNK):
            assert len(chunk) <= CHUNK  # bounded per read, whatever the compression ratio
            chunks.append(chunk)
        content.verify()
        assert reader.offset == len(stored)  # size and crc32c were checked on these
    assert b"".join(chunks) == vocab


def test_a_gzip_body_damaged_in_transit_is_a_checksum_mismatch_not_a_rejection(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Damage is retried by staging; only intact bytes that do not decode reject a version."""
    put_gzip_encoded(bucket, "m/0001/vocab.txt", random.Random(1).randbytes(200_000))
    with FaultProxy(emulator.url) as proxy:
        proxy.add_rule(Rule(kind="download", fault=Fault.FLIP, at=1000, nbytes=64))
        remote, objects = _reading(proxy.url, bucket, tmp_path, monkeypatch)
        with remote.open(objects["m/0001/vocab.txt"]) as reader:
            content = reader.content()
            with pytest.raises(ChecksumMismatch, match=r"m/0001/vocab\.txt: crc32c mismatch"):
                _read_all(content)


def test_a_gzip_marked_body_that_does_not_decode_rejects_naming_the_object(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = bucket.bucket.blob("m/0001/vocab.txt")
    blob.content_encoding = "gzip"
    blob.upload_from_string(b"plain text, never gzipped\n" * 100)
    remote, objects = _reading(emulator.url, bucket, tmp_path, monkeypatch)

    with remote.open(objects["m/0001/vocab.txt"]) as reader:
        content = reader.content()
        with pytest.raises(VersionRejected) as info:
            content.read(CHUNK)
    assert str(info.value).startswith(
        f"gs://{bucket.name}/m/0001/vocab.txt: stored with Content-Encoding gzip but the body "
        "does not decode ("
    )
    assert "\n" not in str(info.value)


def test_another_content_encoding_rejects_the_object_before_reading_it(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = bucket.bucket.blob("m/0001/weights.bin")
    blob.content_encoding = "br"
    blob.upload_from_string(b"\x8b\x02\x80hello\x03")
    remote, objects = _reading(emulator.url, bucket, tmp_path, monkeypatch)

    with (
        remote.open(objects["m/0001/weights.bin"]) as reader,
        pytest.raises(VersionRejected, match=r"weights.bin: stored with Content-Encoding 'br'"),
    ):
        reader.content()
    assert remote.counters.object_reads == 0


def test_a_range_answered_with_200_continues_at_the_offset_not_from_the_start(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reset after the first chunk, then a resume whose Range a cache ignores: the
    consumer, which already has that chunk, gets the rest exactly once."""
    data = random.Random(2).randbytes(3 * CHUNK + 123)
    bucket.put("m/0001/model.bin", data)
    with FaultProxy(emulator.url) as proxy:
        proxy.add_rule(Rule(kind="download", ranged=False, fault=Fault.RESET, at=CHUNK + 1000))
        proxy.add_rule(Rule(kind="download", ranged=True, fault=Fault.IGNORE_RANGE))
        remote, objects = _reading(proxy.url, bucket, tmp_path, monkeypatch)
        with remote.open(objects["m/0001/model.bin"]) as reader:
            got = b"".join(iter(lambda: reader.read(CHUNK), b""))
            reader.verify()
        statuses = [(r.range_header is not None, r.status) for r in proxy.records]
    assert got == data
    assert statuses[1:] == [(False, 200), (True, 200)]  # listing, reset, ignored Range
    assert remote.counters.bytes_read == len(data)
