from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from gcs_model_sync.serve.hooks import Hook, redact
from tests.support.strays import stopped_afterwards


def recorder(tmp_path: Path, code: int = 0) -> tuple[str, Path]:
    out = tmp_path / "env.json"
    script = tmp_path / "hook.py"
    script.write_text(
        "import json, os, sys\n"
        f"open({str(out)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
        f"sys.exit({code})\n"
    )
    return f"{sys.executable} {script}", out


def test_hook_sees_what_changed_and_clears_it_on_success(tmp_path: Path) -> None:
    cmd, out = recorder(tmp_path)
    hook = Hook(cmd, timeout=30, base_env={"GCS_MODEL_SYNC_DEST": "/models"})
    hook.add(["m/2", "n/7"], ["m/1"])
    assert hook.run() == "success"
    env = json.loads(out.read_text())
    assert env["GCS_MODEL_SYNC_PUBLISHED"] == "m/2,n/7"
    assert env["GCS_MODEL_SYNC_PRUNED"] == "m/1"
    assert env["GCS_MODEL_SYNC_DEST"] == "/models"
    assert not hook.pending


def test_failed_hook_keeps_changes_for_the_next_try(tmp_path: Path) -> None:
    cmd, out = recorder(tmp_path, code=3)
    hook = Hook(cmd, timeout=30)
    hook.add(["m/2"], [])
    assert hook.run() == "failure"
    hook.add(["m/3", "m/2"], ["m/1"])
    assert hook.published == ["m/2", "m/3"]
    assert hook.pruned == ["m/1"]
    assert hook.run() == "failure"
    assert json.loads(out.read_text())["GCS_MODEL_SYNC_PUBLISHED"] == "m/2,m/3"


def test_hook_runs_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    script = tmp_path / "argv.py"
    script.write_text(
        f"import json, sys\nopen({str(out)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    hook = Hook(f"{sys.executable} {script} a ; 'b c' $HOME", timeout=30)
    hook.add(["m/1"], [])
    assert hook.run() == "success"
    assert json.loads(out.read_text()) == ["a", ";", "b c", "$HOME"]


def test_hook_timeout_and_missing_program(tmp_path: Path) -> None:
    slow = Hook(f"{sys.executable} -c 'import time; time.sleep(30)'", timeout=0.3)
    slow.add(["m/1"], [])
    assert slow.run() == "timeout"
    missing = Hook("/nonexistent/program", timeout=5)
    missing.add(["m/1"], [])
    assert missing.run() == "failure"
    unparsable = Hook("echo 'unterminated", timeout=5)
    unparsable.add(["m/1"], [])
    assert unparsable.run() == "failure"


def test_redact_hides_credentials() -> None:
    assert redact(None) is None
    assert "pw" not in (redact("curl https://user:pw@host/x") or "")
    assert "abc" not in (redact("curl 'https://h/x?token=abc&b=1'") or "")
    assert "s3cr3t" not in (redact("curl -H 'Authorization: Bearer s3cr3t' h") or "")
    assert "hunter2" not in (redact("notify --password hunter2 -v") or "")
    assert redact("curl -X POST http://tfs:8501/reload") == "curl -X POST http://tfs:8501/reload"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_successful_hook_output_is_logged_at_debug_bounded(tmp_path: Path) -> None:
    script = tmp_path / "talk.py"
    script.write_text(
        "import sys\n"
        "for i in range(30):\n"
        "    print(f'line {i}')\n"
        "print('on stderr', file=sys.stderr)\n"
    )
    hook = Hook(f"{sys.executable} {script}", timeout=30)
    hook.add(["m/1"], [])
    logger, seen = logging.getLogger("gcs_model_sync"), _Records()
    level = logger.level
    logger.addHandler(seen)
    logger.setLevel(logging.DEBUG)
    try:
        assert hook.run() == "success"
    finally:
        logger.removeHandler(seen)
        logger.setLevel(level)
    output = [r for r in seen.records if getattr(r, "event", "") == "hook_output"]
    assert len(output) == 1
    assert output[0].levelno == logging.DEBUG
    lines = output[0].fields["output"]  # type: ignore[attr-defined]
    assert len(lines) == 20
    assert lines[-1] == "on stderr"
    assert lines[0] == "line 11"
    assert "line 29" in output[0].getMessage()


def test_a_hook_that_leaves_an_escaped_child_holding_its_output_succeeds_at_its_own_exit() -> None:
    with stopped_afterwards("40.125") as mark:
        hook = Hook(f"sh -c 'echo notified; setsid sleep {mark} & exit 0'", timeout=5)
        hook.add(["m/1"], [])
        started = time.monotonic()
        assert hook.run() == "success"
        assert time.monotonic() - started < 3
    assert not hook.pending


def test_a_hook_timeout_is_kept_even_when_an_escaped_child_holds_its_output() -> None:
    with stopped_afterwards("40.126") as mark:
        hook = Hook(f"sh -c 'setsid sleep {mark} & sleep 30'", timeout=1)
        hook.add(["m/1"], [])
        started = time.monotonic()
        assert hook.run() == "timeout"
        assert time.monotonic() - started < 4
    assert hook.pending


def test_a_hook_that_times_out_is_stopped_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child-still-running"
    hook = Hook(f"sh -c '(sleep 2; touch {marker}) & sleep 30'", timeout=0.5)
    hook.add(["m/1"], [])
    assert hook.run() == "timeout"
    time.sleep(2.5)
    assert not marker.exists()
