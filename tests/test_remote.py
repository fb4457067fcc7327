"""The bucket client: connections are made once per process, not once per pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.remote import Bucket
from gcs_model_sync.retry import StopToken


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
