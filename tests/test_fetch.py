"""Staging one version in-process against the emulator: what only fetch decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync import engine, extract, fetch
from gcs_model_sync.config import Config, Source
from gcs_model_sync.local import Paths
from gcs_model_sync.remote import Bucket
from gcs_model_sync.retry import StopToken
from tests.support.emulator import Emulator
from tests.support.gcs import Bucket as SeededBucket
from tests.support.models import make_piped_zip, sample_files


def test_a_spooled_zip_is_deleted_once_extracted(
    emulator: Emulator, bucket: SeededBucket, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's W3 rule: no archive copy outlives its extraction, even before publishing."""
    files = sample_files("spooled", size=100_000)
    bucket.put("models/m/0003.zip", make_piped_zip(files, "0003"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.url)
    config = Config(source=Source.parse(f"gs://{bucket.name}/models"), dest=dest)
    stop = StopToken()
    (install,) = engine.inspect(config, stop).plan.installs
    paths = Paths(dest)
    paths.ensure()
    spooled: list[Path] = []
    real = extract.extract_zip

    def spy(archive: Path, writer: extract.Writer, where: str) -> None:
        spooled.append(archive)
        real(archive, writer, where)

    monkeypatch.setattr(extract, "extract_zip", spy)
    staged = fetch.stage(Bucket(config, stop), install.version, paths, config)

    assert len(spooled) == 1  # it took the spooled path
    assert not spooled[0].exists()
    assert [p.name for p in staged.workdir.iterdir()] == ["tree"]
    assert {
        p.relative_to(staged.content).as_posix(): p.read_bytes()
        for p in staged.content.rglob("*")
        if p.is_file()
    } == files
