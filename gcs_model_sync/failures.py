"""What failed in a pass and of which kind, and the one rule that turns an error into a kind.

Below report.py and deletions.py (both read failures; neither is read from here)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gcs_model_sync.errors import InsufficientSpace, SyncError, VersionRejected


class FailureKind(StrEnum):
    """Why something failed; deletions.decide() reads only this."""

    LISTING = "listing"  # the bucket could not be listed: nothing is known
    REMOTE = "remote"  # a version could not be read (denied, gone, retries exhausted)
    CONTENT = "content"  # a version's bytes are unusable (corrupt, hostile, ambiguous)
    LOCAL = "local"  # the destination refused (read-only, a sync failed, a state save)
    SPACE = "space"  # a version does not fit on the destination's disk
    ROLLOUT = "rollout"  # the model server did not confirm a new version (--server)
    LINK = "link"  # a model's or version's folder below DEST is a symbolic link: not followed
    INTERNAL = "internal"  # a bug


class Step(StrEnum):
    """What the pass was doing when an error came: the same error means different things
    while listing (nothing is known), fetching, writing a local file, or asking the server."""

    LIST = "list"
    FETCH = "fetch"  # a version
    FILE = "file"  # a model file: any error of the bucket's or its content's blocks every deletion
    WRITE = "write"
    SERVER = "server"


def classify(exc: BaseException, step: Step = Step.FETCH) -> FailureKind:
    """The kind of failure `exc` is, raised during `step`: the only place kinds are chosen."""
    if isinstance(exc, OSError) or step is Step.WRITE:
        return FailureKind.LOCAL
    if not isinstance(exc, SyncError):
        return FailureKind.INTERNAL
    if step is Step.LIST:
        return FailureKind.LISTING
    if step is Step.SERVER:
        return FailureKind.ROLLOUT
    if step is Step.FILE:
        return FailureKind.REMOTE
    if isinstance(exc, VersionRejected):
        return FailureKind.CONTENT
    if isinstance(exc, InsufficientSpace):
        return FailureKind.SPACE
    return FailureKind.REMOTE


@dataclass(frozen=True, slots=True)
class Failure:
    model: str | None
    version: str | None  # version id
    message: str
    kind: FailureKind = FailureKind.REMOTE

    @property
    def subject(self) -> str:
        """What failed, as the pass summary names it: a version, a model, or the listing."""
        if self.version:
            return self.version
        if self.model is not None:
            return self.model or "."
        return str(self.kind)
