"""Reaching the bucket: one session and client per process, shared by passes and reused
from one object to the next; which endpoint gets credentials, and what a refusal says."""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3

from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import ConfigError
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source import auth
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket


def test_passes_share_one_session_and_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing is sent
    config = Config(source=Source.parse("gs://bkt/p"), dest=tmp_path)
    first, second = Bucket(config, StopToken()), Bucket(config, StopToken())
    assert first.session is second.session
    assert first.client is second.client
    assert first.counters is not second.counters  # per-pass bookkeeping stays per pass
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:10")
    assert Bucket(config, StopToken()).session is not first.session


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


def config(**kw: object) -> Config:
    return Config(Source.parse("gs://bkt/p"), Path("/nonexistent-dest"), **kw)  # type: ignore[arg-type]


def test_equal_settings_are_one_cache_key_and_the_emulator_is_part_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    first = auth.Settings.of(config(workers=4, connections=16))
    assert first == auth.Settings.of(config(workers=4, connections=16, keep=3))
    assert first.connections == 16
    assert auth.Settings.of(config(workers=32, connections=16)).connections == 32
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    assert auth.Settings.of(config(workers=4, connections=16)) != first


def test_a_refusal_by_an_endpoint_sent_no_credentials_says_how_to_send_them() -> None:
    proxy = "http://proxy.internal:8080"
    withheld = auth.Settings(False, None, 1, None, proxy)
    assert not withheld.sends
    assert auth._unsent(withheld, proxy) == (
        f" (no Google credentials were sent to {proxy}, which is not "
        "https://*.googleapis.com: --endpoint-credentials sends them)"
    )
    assert auth._unsent(auth.Settings(False, None, 1, None, proxy, True), proxy) == ""
    assert auth._unsent(auth.Settings(True, None, 1, None, proxy), proxy) == ""
    google = "https://storage.googleapis.com"
    assert auth._unsent(auth.Settings(False, None, 1, None, google), google) == ""


def test_a_403_names_the_service_account_or_says_where_to_look() -> None:
    class Creds:
        service_account_email = "sync@p.iam.gserviceaccount.com"

    class Session:
        credentials = Creds()

    assert auth.who(Session()) == "as sync@p.iam.gserviceaccount.com"
    assert auth.who(object()) == "check the caller's IAM roles"


def test_a_key_file_that_cannot_be_used_is_one_sentence_with_its_cause(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def refuse(**kw: object) -> None:
        raise DefaultCredentialsError("File k.json is not a valid json file.", ValueError("bad"))

    monkeypatch.setattr(google.auth, "default", refuse)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "k.json")
    with pytest.raises(ConfigError) as info:
        auth._google(None)
    assert str(info.value) == (
        "GOOGLE_APPLICATION_CREDENTIALS=k.json cannot be used: "
        "File k.json is not a valid json file (bad)"
    )
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    with pytest.raises(ConfigError, match=r"^no Google credentials found: .* --anonymous$"):
        auth._google(None)
