"""Ask the model server which version of a model it serves: a rollout is confirmed when the
server reports the new version ready, not when its folder is in place.

What is asked, and what the answers mean, is each kind's own module (kinds.py lists them);
rest.py carries the requests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gcs_model_sync.servers.kinds import KINDS, Asker, Kind
from gcs_model_sync.servers.rest import Rest, ServerError

if TYPE_CHECKING:
    from gcs_model_sync.retry import StopToken

__all__ = ["Kind", "ModelServer", "ServerError", "server_name"]


def server_name(model: str, dest: Path) -> str:
    """Model path relative to DEST -> the name the server knows it by: tfs_config.model_name
    rules ("team/resnet" -> "team_resnet"), and DEST's basename for the empty path."""
    from gcs_model_sync.servers.tfs_config import (
        model_name,  # its imports are not needed for --help
    )

    return model_name(model) if model else model_name(Path(os.path.abspath(dest)).name)


@dataclass(frozen=True, slots=True)
class ModelServer:
    """One model server's REST endpoint: `url` is http(s)://host:port[/path-prefix]."""

    url: str
    kind: Kind
    timeout: float = 5.0  # per request
    poll: float = 0.5  # between two asks while waiting for a version
    _rest: Rest = field(init=False, repr=False, compare=False)
    _asker: Asker = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rest", Rest(self.url, self.timeout))
        object.__setattr__(self, "_asker", KINDS[self.kind][0])

    @property
    def shown(self) -> str:
        """The URL as messages show it: without a user:password@ part."""
        return self._rest.shown

    @property
    def loads(self) -> bool:
        """It loads nothing by itself: a changed model is loaded (load()), then waited for."""
        return self._asker.loads

    def served(self, name: str, candidates: Iterable[int]) -> int | None:
        """The newest of `candidates` (the version numbers on disk) that the server reports
        ready.

        None when it serves none of them or does not know the model (404, or another 4xx
        that means not ready). ServerError when it cannot be reached or answers something
        that is not the protocol (5xx, bad JSON).
        """
        return self._asker.served(self._rest, name, set(candidates))

    def load(self, name: str, timeout: float | None = None) -> None:
        """Ask the server to load the model's newest version; a no-op for the kinds that find
        new versions themselves. `timeout` (seconds) may exceed the per-request one."""
        self._asker.load(self._rest, name, self.timeout if timeout is None else timeout)

    def wait_until_served(
        self,
        name: str,
        version: int,
        candidates: Iterable[int],
        within: float,
        stop: StopToken,
        exact: bool = False,
    ) -> int | None:
        """Poll served() until it reports `version` or newer (`exact`: `version` itself, the
        newer ones unloaded), for `within` seconds at most; returns what it last saw
        (possibly None), also when `stop` ends the wait early.

        A ServerError while polling is retried (a server restarting, a sidecar not ready yet)
        until `within` runs out; then the last one is raised.
        """
        wanted = {*candidates, version}
        deadline = time.monotonic() + within
        seen: int | None = None
        while True:
            failure: ServerError | None = None
            try:
                seen = self.served(name, wanted)
            except ServerError as exc:
                failure = exc
            if seen is not None and (seen == version if exact else seen >= version):
                return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if failure is not None:
                    raise failure
                return seen
            if stop.wait(min(self.poll, remaining)):
                return seen
