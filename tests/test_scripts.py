"""The scripts behind `make demo` and `make emulator`, run as a newcomer runs them."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_make_emulator_prints_an_environment_and_commands_that_work_then_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "try-models"
    proc = subprocess.Popen(
        [sys.executable, "scripts/emulator.py", "--port", "0", "--dest", str(dest)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines = []
        while "Ctrl-C stops the emulator." not in lines:
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line.strip())
        (export,) = [line for line in lines if line.startswith("export ")]
        name, _, url = export.removeprefix("export ").partition("=")
        assert name == "STORAGE_EMULATOR_HOST"
        with urllib.request.urlopen(f"{url}/storage/v1/b/demo-models/o", timeout=5) as resp:
            listed = {item["name"] for item in json.load(resp)["items"]}
        assert "models/half_plus_two/0001.zip" in listed
        env = {"STORAGE_EMULATOR_HOST": url, "PATH": "/usr/bin:/bin"}

        def printed(command: str) -> subprocess.CompletedProcess[str]:
            (line,) = [line for line in lines if f"gcs-model-sync {command} " in line]
            return subprocess.run(
                shlex.split(line), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
            )

        plan = printed("plan")
        assert plan.returncode == 0, plan.stderr
        assert "half_plus_two/0001" in plan.stdout
        once = printed("once")
        assert once.returncode == 0, once.stderr
        assert (dest / "half_plus_two" / "0001" / "saved_model.pb").is_file()
        assert (dest / "resnet" / "0007" / "saved_model.pb").is_file()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "emulator stopped" in proc.stdout.read()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=2)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
