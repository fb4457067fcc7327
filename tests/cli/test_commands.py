"""commands.py's own rules, in-process: what a signal does to a command, and which settings
are refused before any pass."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from gcs_model_sync.cli import commands
from gcs_model_sync.config import Config, Source
from gcs_model_sync.errors import ConfigError, Interrupted


def test_a_signal_during_a_command_asks_the_pass_to_stop_and_the_handlers_come_back() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    with commands.stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the time kill() returns
        assert stop.is_set()
        with pytest.raises(Interrupted) as caught:
            stop.check()
    assert caught.value.signum == signal.SIGTERM
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"verify": "'unclosed"}, "--verify cannot be parsed"),
        ({"verify": "no-such-program-here --check"}, "--verify: 'no-such-program-here'"),
        ({"on_change": "no-such-program-here"}, "--on-change: 'no-such-program-here'"),
        ({"server": "ftp://tfs:8500"}, "--server ftp://tfs:8500: not an http(s)://"),
    ],
)
def test_a_command_that_cannot_run_is_a_usage_error_before_any_pass(
    tmp_path: Path, options: dict[str, str], says: str
) -> None:
    source = Source.parse("gs://bucket/models")
    config = Config(source=source, dest=tmp_path, **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="^" + re.escape(says)):
        commands.check_commands(config)
