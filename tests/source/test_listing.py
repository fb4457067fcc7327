"""The listing: every page of the prefix, in as few requests as the page size allows, and
the bucket's clock from the first page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import BucketNotFound
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.listing import http_date
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket


def test_a_listing_reads_every_page_and_keeps_the_first_pages_date(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        bucket.put(f"m/{i}/w.bin", bytes([i]) * (i + 1))
    bucket.put("other/x", b"x")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    config = Config(Source.parse(f"gs://{bucket.name}/m"), tmp_path, list_page_size=2)
    remote = Bucket(config, StopToken())

    listing = remote.list_objects()

    assert sorted((o.name, o.size) for o in listing.objects) == [
        (f"m/{i}/w.bin", i + 1) for i in range(5)
    ]
    assert all(o.generation > 0 and o.crc32c for o in listing.objects)
    assert remote.counters.list_requests == 3
    assert listing.server_time is not None
    assert abs(listing.server_time - time.time()) < 60


def test_a_missing_bucket_is_named(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    remote = Bucket(Config(Source.parse("gs://no-such-bucket-here/m"), tmp_path), StopToken())
    with pytest.raises(BucketNotFound, match=r"^bucket gs://no-such-bucket-here not found$"):
        remote.list_objects()
    assert remote.counters.list_requests == 1


def test_http_dates_parse_and_anything_else_is_no_date() -> None:
    assert http_date("Thu, 01 Jan 2026 00:00:00 GMT") == 1767225600.0
    assert http_date(None) is None
    assert http_date("") is None
    assert http_date("yesterday") is None
