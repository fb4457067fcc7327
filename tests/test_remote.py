"""The bucket client: connections are made once per process, not once per pass, and
reused from one object to the next."""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3

from gcs_model_sync.config import Config, Source
from gcs_model_sync.remote import Bucket
from gcs_model_sync.retry import StopToken
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket


def test_passes_share_one_session_and_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing is sent
    config = Config(source=Source.parse("gs://b/p"), dest=tmp_path)
    first, second = Bucket(config, StopToken()), Bucket(config, StopToken())
    assert first._session is second._session
    assert first._client is second._client
    assert first.counters is not second.counters  # per-pass bookkeeping stays per pass
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:10")
    assert Bucket(config, StopToken())._session is not first._session


def test_objects_read_to_the_end_reuse_one_connection(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against real GCS a new connection is a TLS handshake: a folder-form version of many
    objects must not pay one per object. (urllib3 returns a connection to the pool once its
    body is read to the end; closing the response afterwards does not undo that.)"""
    for i in range(5):
        bucket.put(f"m/0001/shard-{i}", bytes([i]) * (100_000 + i))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    config = Config(source=Source.parse(f"gs://{bucket.name}/m"), dest=tmp_path, workers=1)
    remote = Bucket(config, StopToken())
    connects = 0
    real_connect = urllib3.connection.HTTPConnection.connect

    def counting_connect(self: urllib3.connection.HTTPConnection) -> None:
        nonlocal connects
        connects += 1
        real_connect(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", counting_connect)
    objects = remote.list_objects().objects
    assert len(objects) == 5
    for obj in objects:
        with remote.open(obj) as reader:
            reader.verify()
            assert reader.offset == obj.size
    assert connects <= 1
