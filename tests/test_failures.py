"""classify(): the one place an error becomes a failure kind."""

from __future__ import annotations

import pytest

from gcs_model_sync.errors import (
    AccessDenied,
    ChecksumMismatch,
    InsufficientSpace,
    ObjectChanged,
    SyncError,
    VerifyRefused,
    VersionRejected,
)
from gcs_model_sync.failures import FailureKind, Step, classify
from gcs_model_sync.servers.server import ServerError

K = FailureKind


@pytest.mark.parametrize(
    ("exc", "step", "kind"),
    [
        (VersionRejected("bad zip"), Step.FETCH, K.CONTENT),
        (VerifyRefused("refused", "failure"), Step.FETCH, K.CONTENT),
        (InsufficientSpace("full"), Step.FETCH, K.SPACE),
        (AccessDenied("403"), Step.FETCH, K.REMOTE),
        (ChecksumMismatch("crc"), Step.FETCH, K.REMOTE),
        (ObjectChanged("gone"), Step.FETCH, K.REMOTE),
        (OSError(30, "Read-only file system"), Step.FETCH, K.LOCAL),
        (RuntimeError("a bug"), Step.FETCH, K.INTERNAL),
        (AccessDenied("403"), Step.LIST, K.LISTING),
        (SyncError("anything"), Step.LIST, K.LISTING),
        (ServerError("refused"), Step.SERVER, K.ROLLOUT),
        (SyncError("outside DEST"), Step.WRITE, K.LOCAL),
        (ValueError("bad name"), Step.WRITE, K.LOCAL),
        (OSError(28, "No space left on device"), Step.WRITE, K.LOCAL),
        # A model file's error of any kind blocks every deletion, as a read error does.
        (VersionRejected("too big"), Step.FILE, K.REMOTE),
        (InsufficientSpace("full"), Step.FILE, K.REMOTE),
        (OSError(28, "No space left on device"), Step.FILE, K.LOCAL),
    ],
)
def test_an_error_is_classified_by_what_it_is_and_what_the_pass_was_doing(
    exc: BaseException, step: Step, kind: FailureKind
) -> None:
    assert classify(exc, step) is kind


def test_a_step_left_out_is_a_fetch() -> None:
    assert classify(VersionRejected("x")) is K.CONTENT
