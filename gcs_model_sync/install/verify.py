"""The --verify command: a check of each staged version, run before the version is published.

Run like --on-change (hooks.run_bounded: shlex-split, no shell unless the command is one), in
the staged folder, with the version named in its environment, bounded by --hook-timeout (its
output too), killed with its process group when the pass stops. A refusal is remembered in
the state file: the version is not downloaded and checked again until its object changes (or the
command does).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from gcs_model_sync.errors import ConfigError, SyncError, VerifyRefused
from gcs_model_sync.layout import version_id
from gcs_model_sync.logs import event
from gcs_model_sync.redaction import scrub, secrets_in
from gcs_model_sync.retry import StopToken
from gcs_model_sync.serve.hooks import OUTPUT_LINES, run_bounded

POLL = 0.1  # seconds between looks at the stop token while the check runs


def argv_of(command: str, option: str = "--verify") -> list[str]:
    """The command split as it will run; a usage error (exit 2) before any pass when it
    cannot be split or its program is not there (`option`: --verify or --on-change)."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"{option} cannot be parsed: {exc}") from exc
    if not argv:
        raise ConfigError(f"{option} is empty")
    if shutil.which(argv[0]) is None:
        raise ConfigError(f"{option}: {argv[0]!r} is not an executable program (not on PATH?)")
    return argv


@dataclass(frozen=True, slots=True)
class Verify:
    """Checks run one at a time: a check that loads a model holds its size in memory, and
    16 of them at once (one per worker) would take a sidecar's memory limit many times over."""

    command: str
    timeout: float
    base_env: dict[str, str] = field(default_factory=dict)
    turn: threading.Lock = field(default_factory=threading.Lock)

    def check(self, model: str, version: str, folder: Path, where: str, stop: StopToken) -> str:
        """Run the check on a staged version; returns "success", or raises VerifyRefused
        (exit code or timeout: the version's fault, remembered) or SyncError (it could not
        start: this node's fault, tried again next pass)."""
        while not self.turn.acquire(timeout=POLL):
            stop.check()
        try:
            return self._run(model, version, folder, where, stop)
        finally:
            self.turn.release()

    def _run(self, model: str, version: str, folder: Path, where: str, stop: StopToken) -> str:
        env = {
            **os.environ,
            **self.base_env,
            "GCS_MODEL_SYNC_MODEL": model,
            "GCS_MODEL_SYNC_VERSION": version,
            "GCS_MODEL_SYNC_VERSION_DIR": str(folder),
        }
        vid = version_id(model, version)
        try:
            done = run_bounded(
                shlex.split(self.command), env=env, timeout=self.timeout, cwd=folder, stop=stop
            )
        except OSError as exc:
            raise SyncError(f"{where}: --verify could not start: {exc}") from exc
        if done.returncode is None:
            stop.check()
            raise VerifyRefused(
                f"{where}: --verify refused {vid}: timed out after {self.timeout:g}s",
                outcome="timeout",
            )
        hidden = secrets_in(self.command)
        _log_output(vid, scrub((done.stdout + done.stderr).decode(errors="replace"), hidden))
        if done.returncode != 0:
            last = _last_line(done.stderr) or _last_line(done.stdout) or "(no error output)"
            raise VerifyRefused(
                f"{where}: --verify refused {vid}: exited {done.returncode}: {scrub(last, hidden)}",
                outcome="failure",
            )
        event(logging.INFO, "verified", f"--verify passed {vid}", model=model, version=version)
        return "success"


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return last[:300]


def _log_output(vid: str, text: str) -> None:
    """At -v: what the check printed, its last OUTPUT_LINES lines."""
    lines = text.strip().splitlines()[-OUTPUT_LINES:]
    if lines:
        event(
            logging.DEBUG,
            "verify_output",
            f"--verify output for {vid}:\n" + "\n".join(f"  | {line}" for line in lines),
            output=lines,
        )
