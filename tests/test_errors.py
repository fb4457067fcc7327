"""errors.exit_code: the one mapping from what happened to the process's exit code."""

from __future__ import annotations

import pytest

from gcs_model_sync.errors import (
    EXIT_FAILED,
    EXIT_GUARD,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    Interrupted,
    LockBusy,
    RemoteError,
    SyncError,
    VersionRejected,
    exit_code,
    os_error,
    worst,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("--keep must be >= 0"), EXIT_USAGE),
        (Interrupted(15), 143),
        (Interrupted(2), 130),
        (LockBusy("busy"), EXIT_FAILED),
        (RemoteError("denied"), EXIT_FAILED),
        (VersionRejected("bad zip"), EXIT_FAILED),
        (OSError(30, "Read-only file system"), EXIT_FAILED),
        (KeyError("a bug"), EXIT_FAILED),
    ],
)
def test_an_error_that_ended_the_command(error: BaseException, code: int) -> None:
    assert exit_code(error) == code
    if isinstance(error, SyncError):
        assert error.exit_code == code  # the attribute asks the same function


@pytest.mark.parametrize(
    ("guarded", "failed", "code"),
    [(False, False, EXIT_OK), (False, True, EXIT_FAILED), (True, False, EXIT_GUARD),
     (True, True, EXIT_GUARD)],
)  # fmt: skip
def test_how_a_command_ended_a_guard_wins_over_failures(
    guarded: bool, failed: bool, code: int
) -> None:
    assert exit_code(guarded=guarded, failed=failed) == code


def test_os_error_is_one_line_naming_the_file() -> None:
    exc = OSError(30, "Read-only file system")
    exc.filename = "/models/x"
    assert os_error(exc) == "Read-only file system (/models/x)"
    assert os_error(OSError("plain")) == "plain"


@pytest.mark.parametrize(
    ("codes", "code"),
    [
        ([], EXIT_OK),
        ([EXIT_OK, EXIT_OK], EXIT_OK),
        ([EXIT_OK, EXIT_FAILED], EXIT_FAILED),
        ([EXIT_FAILED, EXIT_GUARD, EXIT_OK], EXIT_GUARD),  # as exit_code: a guard over a failure
        ([EXIT_GUARD, EXIT_USAGE], EXIT_USAGE),
        ([EXIT_USAGE, 143, EXIT_FAILED], 143),
    ],
)
def test_several_sources_exit_with_the_worst_of_their_codes(codes: list[int], code: int) -> None:
    assert worst(codes) == code
    assert worst(reversed(codes)) == code
    assert worst([exit_code(guarded=True), exit_code(failed=True)]) == exit_code(
        guarded=True, failed=True
    )
