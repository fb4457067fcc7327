"""--server: after publishing, confirm the rollout with the model server.

Triton in explicit model-control mode is asked to load each model that changed (or that it
does not serve: it may have restarted); every model that got a new version, or was loaded, is
polled until the server serves the newest one on disk (bounded by --server-timeout). Every
other model is asked once, for the metric and for deletions.decide(), which keeps a
superseded version until the server serves a newer one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gcs_model_sync.config import Config
from gcs_model_sync.failures import FailureKind, Step, classify
from gcs_model_sync.layout import numbers_by_model, split_id
from gcs_model_sync.logs import event
from gcs_model_sync.report import Report
from gcs_model_sync.retry import StopToken
from gcs_model_sync.servers.server import Kind, ModelServer, ServerError, server_name

if TYPE_CHECKING:
    from gcs_model_sync.pass_ import Pass


@dataclass(slots=True)
class _Asking:
    """One confirmation: whom to ask, until when, where failures go, and whether to act
    (load and wait) or only ask."""

    config: Config
    report: Report
    stop: StopToken
    act: bool
    server: ModelServer = field(init=False)
    deadline: float = field(init=False)

    @property
    def pins(self) -> dict[str, int]:
        """The pins the server is told of (--tfs-config names them): waited for exactly.
        Without it a server on its "latest" policy serves a pin only once the newer
        versions are gone, so nothing waits for it before the prunes."""
        return self.config.pins if self.config.tfs_config is not None else {}

    def __post_init__(self) -> None:
        assert self.config.server is not None
        self.server = ModelServer(self.config.server, Kind(self.config.server_kind))
        # One bound for the whole confirmation: the models load side by side on the server,
        # and ten models it will never serve must not hold a pass for ten timeouts.
        self.deadline = time.monotonic() + self.config.server_timeout


def ask(config: Config, on_disk: Iterable[str], stop: StopToken) -> dict[str, int | None]:
    """What the server serves now, only asked: no load, no waiting, no failure recorded (for
    `plan`, and for what a full disk may free early)."""
    return _confirm(_Asking(config, Report(), stop, act=False), on_disk, set())


def confirm(run: Pass, on_disk: Iterable[str], changed_models: set[str]) -> dict[str, int | None]:
    """model -> the newest version the server serves (None: none, or it could not be asked).

    `on_disk`: version ids on disk now; `changed_models`: models with a version published or
    a model file written this pass. A new version the server does not serve in time fails
    the pass for its model (its deletions wait); the others go on.
    """
    return _confirm(_Asking(run.config, run.report, run.stop, act=True), on_disk, changed_models)


def confirm_pins(run: Pass, on_disk: Iterable[str], models: set[str]) -> None:
    """After the prunes: each of `models` (pinned, the server not told the pin, a newer
    version gone this pass) is polled until the server serves exactly its pin, which a
    "latest"-policy server loads only once the newer folders are gone. A pin not served in
    time fails the pass for its model; nothing is left to delete for it anyway."""
    how = _Asking(run.config, run.report, run.stop, act=True)
    versions, pins = _newest_first(on_disk), run.config.pins
    for model in sorted(models):
        name = server_name(model, how.config.dest)
        try:
            how.report.served[model] = _wait(how, model, name, versions[model], pins[model])
        except ServerError as exc:
            _failed(how, model, exc)


def _confirm(
    how: _Asking, on_disk: Iterable[str], changed_models: set[str]
) -> dict[str, int | None]:
    server, report, pins = how.server, how.report, how.pins
    versions = _newest_first(on_disk)
    published = {split_id(vid)[0] for vid in report.published}
    served: dict[str, int | None] = {}
    for model in sorted(versions):
        name = server_name(model, how.config.dest)
        numbers = versions[model]
        try:
            # A server that loads nothing by itself (Triton in explicit mode): a changed model,
            # or one it does not serve (it restarted since), is loaded, then waited for.
            loads = how.act and server.loads
            changed = model in changed_models
            now = None if loads and changed else server.served(name, numbers)
            load = loads and (changed or now is None)
            if load:
                server.load(name, timeout=max(how.deadline - time.monotonic(), 1.0))
                event(logging.INFO, "server_load", f"asked {server.shown} to load {name}")
            pin = pins.get(model)
            if pin is not None and pin in numbers:
                if how.act and (model in published or now != pin):
                    now = _wait(how, model, name, numbers, pin)
            elif model in published or load:
                now = _wait(how, model, name, numbers)
            served[model] = now
        except ServerError as exc:
            served[model] = None
            if model in changed_models:
                _failed(how, model, exc)
            else:
                event(logging.WARNING, "server_unreachable", f"{exc}; its deletions wait")
    report.served = served
    return served


def _newest_first(on_disk: Iterable[str]) -> dict[str, list[int]]:
    """Model -> its version numbers on disk, newest first."""
    by_model = numbers_by_model(on_disk)
    return {model: sorted(numbers, reverse=True) for model, numbers in by_model.items()}


def _failed(how: _Asking, model: str, exc: ServerError) -> None:
    """The server could not be asked about a model whose rollout it must confirm."""
    how.report.fail(classify(exc, Step.SERVER), model, None, str(exc))
    event(logging.ERROR, "rollout_failed", str(exc), model=model)


def _wait(
    how: _Asking, model: str, name: str, numbers: list[int], pin: int | None = None
) -> int | None:
    """Until the server serves the newest version on disk, or exactly the `pin` (a rollback:
    the newer ones it still serves are unloaded first)."""
    server = how.server
    newest = numbers[0] if pin is None else pin
    within = max(how.deadline - time.monotonic(), 0.0)  # spent: one look, no wait
    got = server.wait_until_served(name, newest, numbers, within, how.stop, exact=pin is not None)
    how.stop.check()
    if got is not None and (got == newest if pin is not None else got >= newest):
        event(
            logging.INFO,
            "served",
            f"{server.shown} serves {name} version {got}",
            model=model,
            version=got,
        )
        return got
    now = "no version" if got is None else f"version {got}"
    message = (
        f"--server {server.shown}: {name} still serves {now}, not {newest}, after "
        f"--server-timeout {how.config.server_timeout:g}s; the versions it supersedes stay"
    )
    # Not an error raised but a wait that ran out: a rollout failure by what it is.
    how.report.fail(FailureKind.ROLLOUT, model, None, message)
    event(logging.ERROR, "rollout_failed", message, model=model, version=newest)
    return got
