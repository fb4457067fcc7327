"""Run the real CLI in a subprocess, as users and Kubernetes do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def cli_env(emulator_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCS_MODEL_SYNC_")}
    env["STORAGE_EMULATOR_HOST"] = emulator_url
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gcs_model_sync", *args]


def run_cli(
    args: Sequence[str],
    emulator_url: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        env=cli_env(emulator_url, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def popen_cli(
    args: Sequence[str], emulator_url: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        env=cli_env(emulator_url, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
