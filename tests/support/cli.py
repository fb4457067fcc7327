"""Run the real CLI in a subprocess, as users and Kubernetes do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def cli_env(
    emulator_url: str, extra: Mapping[str, str | None] | None = None, *, emulator: bool = True
) -> dict[str, str]:
    """The CLI's environment: STORAGE_EMULATOR_HOST=emulator_url (which makes the product drop
    credentials) unless `emulator` is False; `extra` adds variables, and a None value unsets one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCS_MODEL_SYNC_")}
    # Uploads in tests are complete when the test says so; scenarios about settling pass
    # --settle themselves (the flag wins over this).
    env["GCS_MODEL_SYNC_SETTLE"] = "0"
    env.pop("STORAGE_EMULATOR_HOST", None)
    if emulator:
        env["STORAGE_EMULATOR_HOST"] = emulator_url
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gcs_model_sync", *args]


def run_cli(
    args: Sequence[str],
    emulator_url: str,
    env: Mapping[str, str | None] | None = None,
    timeout: float = 120,
    cwd: Path | None = None,
    *,
    emulator: bool = True,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args),
        env=cli_env(emulator_url, env, emulator=emulator),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def popen_cli(
    args: Sequence[str],
    emulator_url: str,
    env: Mapping[str, str | None] | None = None,
    *,
    emulator: bool = True,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(*args),
        env=cli_env(emulator_url, env, emulator=emulator),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
