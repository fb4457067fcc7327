"""Fixtures: one real fake-gcs-server per test session, a fresh bucket per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import Emulator
from tests.support.gcs import Bucket, client

_bucket_ids = itertools.count()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log = tmp_path_factory.mktemp("emulator") / "fake-gcs-server.log"
    with Emulator(log_path=log) as emu:
        yield emu


@pytest.fixture(scope="session")
def gcs(emulator: Emulator) -> Any:
    return client(emulator.url)


@pytest.fixture
def bucket(gcs: Any) -> Bucket:
    return Bucket(gcs, f"test-bucket-{next(_bucket_ids)}")


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "models"
