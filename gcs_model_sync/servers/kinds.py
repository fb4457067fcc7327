"""The model-server kinds `--server-kind` names: one registry line each, one module each
behind the Asker protocol. A new kind is a module, a member of Kind and a line in KINDS."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from gcs_model_sync.servers.rest import Rest
from gcs_model_sync.servers.tfserving import TFServing
from gcs_model_sync.servers.triton import TritonExplicit
from gcs_model_sync.servers.v2 import V2Ready


class Asker(Protocol):
    """What one kind of server is asked. `loads`: it loads nothing by itself, so every
    changed model is loaded (load()) before it is waited for."""

    @property
    def loads(self) -> bool: ...

    def served(self, rest: Rest, name: str, wanted: set[int]) -> int | None:
        """The newest of `wanted` the server reports ready; None for none of them, or for
        a model it does not know. ServerError for an answer outside the protocol."""
        ...

    def load(self, rest: Rest, name: str, timeout: float) -> None: ...


class Kind(StrEnum):
    TFSERVING = "tfserving"
    KSERVE = "kserve-v2"
    TRITON = "triton-explicit"


# The kind, how it is asked, and what `--server-kind`'s help says of it.
KINDS: dict[Kind, tuple[Asker, str]] = {
    Kind.TFSERVING: (TFServing(), "REST /v1/models"),
    Kind.KSERVE: (V2Ready(), "Triton, OpenVINO, KServe runtimes"),
    Kind.TRITON: (TritonExplicit(), "also asks Triton to load each changed model"),
}


def kinds_help() -> str:
    """`--server-kind`'s help: every kind, and what it asks."""
    said = [f"{kind} ({about})" for kind, (_, about) in KINDS.items()]
    return f"{', '.join(said[:-1])}, or {said[-1]}."
