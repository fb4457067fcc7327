"""--verify's runner: how a check is started, judged, bounded and stopped."""

from __future__ import annotations

import shlex
import sys
import threading
import time
from pathlib import Path

import pytest

from gcs_model_sync.errors import ConfigError, Interrupted, VerifyRefused
from gcs_model_sync.install.verify import Verify, argv_of
from gcs_model_sync.retry import StopToken


def python(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("check 'unclosed", "--verify cannot be parsed: No closing quotation"),
        ("   ", "--verify is empty"),
        ("no-such-program-here --x", "--verify: 'no-such-program-here' is not an executable"),
    ],
)
def test_a_command_that_cannot_run_is_a_usage_error(command: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message):
        argv_of(command)


def test_a_command_on_the_path_is_accepted() -> None:
    assert argv_of("sh -c 'exit 0'") == ["sh", "-c", "exit 0"]


def test_the_refusal_names_the_version_and_the_last_line_of_error_output(tmp_path: Path) -> None:
    code = "import sys; print('ok so far'); print('step 1', file=sys.stderr); "
    code += "print('  shape mismatch in layer 3  ', file=sys.stderr); print(file=sys.stderr); "
    code += "sys.exit(2)"
    with pytest.raises(VerifyRefused) as refused:
        Verify(python(code), 10).check("m", "0003", tmp_path, "gs://b/m/0003.zip", StopToken())
    assert str(refused.value) == (
        "gs://b/m/0003.zip: --verify refused m/0003: exited 2: shape mismatch in layer 3"
    )
    assert refused.value.outcome == "failure"


def test_a_silent_failure_says_it_had_no_error_output(tmp_path: Path) -> None:
    with pytest.raises(VerifyRefused, match=r"exited 1: \(no error output\)$"):
        Verify("sh -c 'exit 1'", 10).check("", "7", tmp_path, "gs://b/7.zip", StopToken())


def test_a_passing_check_returns_success(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"x")
    check = Verify(python("import os; assert os.path.exists('saved_model.pb')"), 10)
    assert check.check("m", "1", tmp_path, "gs://b/m/1.zip", StopToken()) == "success"


def test_a_stop_kills_the_check_at_once(tmp_path: Path) -> None:
    stop = StopToken()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        Verify("sleep 30", 60).check("m", "1", tmp_path, "gs://b/m/1.zip", stop)
    assert time.monotonic() - started < 5


def test_a_refusal_never_shows_a_password_the_command_carries(tmp_path: Path) -> None:
    command = "sh -c 'echo \"login refused for hunter22\" >&2; exit 1' check --password hunter22"
    with pytest.raises(VerifyRefused) as refused:
        Verify(command, 10).check("m", "1", tmp_path, "gs://b/m/1.zip", StopToken())
    assert str(refused.value) == (
        "gs://b/m/1.zip: --verify refused m/1: exited 1: login refused for <redacted>"
    )
