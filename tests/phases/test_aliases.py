"""Reading each model's aliases object from the bucket (the emulator): once per generation, at
the generation listed, and an object that cannot be read is its model's problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.phases import aliases
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source.remote import Bucket
from tests.support.emulator import Emulator
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.gcs import Bucket as SeededBucket


def _bucket(url: str, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    config = Config(Source.parse(f"gs://{name}/p"), tmp_path, retry_attempts=1)
    return Bucket(config, StopToken())


def test_each_generation_is_read_once_and_a_new_one_is_read_again(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put("p/m/aliases.json", b'{"stable": 1}')
    bucket.put("p/aliases.json", b'{"root": 2}')  # the model at the prefix itself
    bucket.put("p/other/aliases.json", b'{"x": 3}')  # a folder with no versions: not a model
    remote = _bucket(emulator.url, bucket.name, tmp_path, monkeypatch)
    objects = remote.list_objects().objects

    got = aliases.read(remote, objects, {"m", ""}, "aliases.json")
    assert {m: dict(a.labels) for m, a in got.items()} == {"m": {"stable": 1}, "": {"root": 2}}
    assert got["m"].where == f"gs://{bucket.name}/p/m/aliases.json"
    assert remote.counters.object_reads == 2
    assert aliases.read(remote, objects, {"m", ""}, "aliases.json") == got
    assert remote.counters.object_reads == 2  # the same generations: not read again

    bucket.put("p/m/aliases.json", b'{"stable": 4}')
    again = aliases.read(remote, remote.list_objects().objects, {"m"}, "aliases.json")
    assert dict(again["m"].labels) == {"stable": 4}
    assert remote.counters.object_reads == 3


def test_an_aliases_object_that_cannot_be_read_is_its_models_problem_and_is_read_again(
    emulator: Emulator, bucket: SeededBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket.put("p/m/aliases.json", b'{"stable": 1}')
    with FaultProxy(emulator.url) as proxy:
        remote = _bucket(proxy.url, bucket.name, tmp_path, monkeypatch)
        objects = remote.list_objects().objects
        proxy.add_rule(Rule(fault=Fault.STATUS, kind="download", status=403))
        (denied,) = aliases.read(remote, objects, {"m"}, "aliases.json").values()
        assert denied.problem is not None
        assert denied.problem.startswith(f"gs://{bucket.name}/p/m/aliases.json: cannot be read")
        assert denied.labels == {}
        proxy.clear_rules()
        (read,) = aliases.read(remote, objects, {"m"}, "aliases.json").values()
        assert dict(read.labels) == {"stable": 1}
