"""rollout.py against a fake model server: which failures a confirmation records, and what
it answers. The real protocols are covered in tests/e2e/test_rollout.py."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from gcs_model_sync.config import Config, Source
from gcs_model_sync.failures import FailureKind
from gcs_model_sync.install import rollout
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.state import State
from gcs_model_sync.pass_ import Pass
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.servers.server import Kind, ServerError


class FakeServer:
    """Serves `now` (model -> version); a model in `down` cannot be asked."""

    now: dict[str, int | None] = {}  # noqa: RUF012  # set per test
    down: set[str] = set()  # noqa: RUF012

    def __init__(self, url: str, kind: Kind) -> None:
        self.kind, self.shown = kind, url
        self.loads = False  # finds new versions itself, as TF Serving does

    def served(self, name: str, candidates: Iterable[int]) -> int | None:
        if name in self.down:
            raise ServerError(f"--server {self.shown}: {name}: connection refused")
        return self.now.get(name)

    def wait_until_served(self, name: str, newest: int, *args: Any, **kw: Any) -> int | None:
        return self.served(name, ())


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pass:
    monkeypatch.setattr(rollout, "ModelServer", FakeServer)
    FakeServer.now, FakeServer.down = {}, set()
    paths = Paths(tmp_path / "models")
    config = Config(
        source=Source.parse("gs://bucket/models"),
        dest=paths.dest,
        server="http://127.0.0.1:1",
        server_timeout=0.01,
    )
    p = Pass(config, StopToken(), paths, None, Report())  # type: ignore[arg-type]  # no reads
    p.keep(State())
    return p


def test_a_new_version_not_served_in_time_is_a_rollout_failure_of_its_model(run: Pass) -> None:
    FakeServer.now = {"a": 1, "b": 2}
    run.report.published.append("a/2")
    served = rollout.confirm(run, ["a/1", "a/2", "b/2"], {"a"})
    assert served == {"a": 1, "b": 2}
    [failure] = run.report.failures
    assert (failure.kind, failure.model, failure.version) == (FailureKind.ROLLOUT, "a", None)
    assert "still serves version 1, not 2" in failure.message
    assert run.report.served == served


def test_a_server_that_cannot_be_asked_fails_only_a_changed_model(run: Pass) -> None:
    FakeServer.down = {"a", "b"}
    served = rollout.confirm(run, ["a/1", "b/1"], {"a"})
    assert served == {"a": None, "b": None}  # their deletions wait
    assert [(f.kind, f.model) for f in run.report.failures] == [(FailureKind.ROLLOUT, "a")]


def test_ask_records_nothing_and_waits_for_nothing(run: Pass) -> None:
    FakeServer.now, FakeServer.down = {"a": 1}, {"b"}
    assert rollout.ask(run.config, ["a/1", "a/2", "b/1"], StopToken()) == {"a": 1, "b": None}
    assert run.report.failures == []
