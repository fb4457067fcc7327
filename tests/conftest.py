"""Fixtures: one real fake-gcs-server per test session, a fresh bucket per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gcs_model_sync.local.paths import Paths
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket, client
from tests.support.oauth import OAuthServer, ServiceAccountKey
from tests.support.tokens import TokenRegistry

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


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """A destination with the tool's own folders made, as a pass leaves it."""
    p = Paths(tmp_path / "models")
    p.ensure()
    return p


@pytest.fixture
def repo(dest: Path) -> Path:
    """A model repository folder that exists, as a model server is given one."""
    dest.mkdir()
    return dest


@pytest.fixture
def tokens() -> TokenRegistry:
    """Access tokens the credential stand-ins mint and the authenticating proxy admits."""
    return TokenRegistry()


@pytest.fixture
def oauth(tokens: TokenRegistry) -> Iterator[OAuthServer]:
    with OAuthServer(tokens) as server:
        yield server


@pytest.fixture
def key(oauth: OAuthServer, tmp_path: Path) -> ServiceAccountKey:
    """A fresh service-account key file whose token_uri is the stand-in token endpoint."""
    return oauth.new_key_file(tmp_path / "secrets" / "sa.json")
