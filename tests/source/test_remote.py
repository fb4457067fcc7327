"""The bucket as the rest of the code asks of it: the end of an object in one request."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.gcs import Bucket as SeededBucket


def _bucket(url: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    return Bucket(Config(Source.parse(f"gs://{name}/m"), tmp_path), StopToken())


def test_tail_is_the_end_of_the_object_in_one_ranged_request(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(3).randbytes(100_000)
    bucket.put("m/1.zip", data)
    remote = _bucket(emulator.url, bucket.name, tmp_path, monkeypatch)
    (obj,) = remote.list_objects().objects
    assert remote.tail(obj, 99_000) == data[99_000:]
    assert remote.tail(obj, 0) == data
    assert remote.counters.object_reads == 2


def test_tail_is_none_when_the_range_is_ignored(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that answers the whole body: the caller does without the end."""
    bucket.put("m/1.zip", b"z" * 10_000)
    with FaultProxy(emulator.url) as proxy:
        proxy.add_rule(Rule(kind="download", fault=Fault.IGNORE_RANGE))
        remote = _bucket(proxy.url, bucket.name, tmp_path, monkeypatch)
        (obj,) = remote.list_objects().objects
        assert remote.tail(obj, 9_000) is None
