"""The --on-change command: run after a pass that published, pruned or changed a model file,
without a shell.

A hook that fails is retried after the next pass with everything that changed since its last
success, so a notification is never lost to one bad moment (git-sync's rule).
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from gcs_model_sync.logs import event

OUTPUT_LINES = 20  # of a successful hook's stdout and stderr, logged at -v


@dataclass
class Hook:
    command: str
    timeout: float
    base_env: dict[str, str] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)  # since the last successful run
    pruned: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # --model-files written or removed

    @property
    def pending(self) -> bool:
        return bool(self.published or self.pruned or self.files)

    def add(self, published: list[str], pruned: list[str], files: Sequence[str] = ()) -> None:
        self.published += [v for v in published if v not in self.published]
        self.pruned += [v for v in pruned if v not in self.pruned]
        self.files += [f for f in files if f not in self.files]

    def run(self) -> str:
        """Run the command once; returns "success", "failure" or "timeout"."""
        env = {
            **os.environ,
            **self.base_env,
            "GCS_MODEL_SYNC_PUBLISHED": ",".join(self.published),
            "GCS_MODEL_SYNC_PRUNED": ",".join(self.pruned),
            "GCS_MODEL_SYNC_FILES": ",".join(self.files),
        }
        try:
            argv = shlex.split(self.command)
        except ValueError as exc:
            event(logging.ERROR, "hook_failed", f"--on-change cannot be parsed: {exc}")
            return "failure"
        try:
            proc = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            event(logging.ERROR, "hook_failed", f"--on-change timed out after {self.timeout:g}s")
            return "timeout"
        except OSError as exc:
            event(logging.ERROR, "hook_failed", f"--on-change could not start: {exc}")
            return "failure"
        output = (proc.stdout + proc.stderr).decode(errors="replace").strip()
        if proc.returncode != 0:
            event(
                logging.ERROR,
                "hook_failed",
                f"--on-change exited {proc.returncode}: {output[-500:]}",
                exit_code=proc.returncode,
            )
            return "failure"
        event(
            logging.INFO,
            "hook_done",
            f"--on-change ran for {len(self.published)} published, {len(self.pruned)} pruned",
            published=self.published,
            pruned=self.pruned,
        )
        if output:  # at -v: what it printed, its last OUTPUT_LINES lines
            lines = output.splitlines()[-OUTPUT_LINES:]
            event(
                logging.DEBUG,
                "hook_output",
                "--on-change output:\n" + "\n".join(f"  | {line}" for line in lines),
                output=lines,
            )
        self.published, self.pruned, self.files = [], [], []
        return "success"


def redact(command: str | None) -> str | None:
    """Hide credentials a hook command may carry (URL user:password, token=..., Bearer ...)."""
    if command is None:
        return None
    import re

    command = re.sub(r"(://)[^/@\s]+@", r"\1<redacted>@", command)
    command = re.sub(r"(?i)\b(bearer|basic)\s+[^\s'\"]+", r"\1 <redacted>", command)
    command = re.sub(
        r"(?i)(--?[\w-]*(?:token|secret|password|passwd|key)[\w-]*\s+)[^\s'\"-][^\s'\"]*",
        r"\1<redacted>",
        command,
    )
    return re.sub(
        r"(?i)((?:token|secret|password|passwd|key|authorization)[=:]\s*)(?!bearer|basic)"
        r"[^\s&'\"]+",
        r"\1<redacted>",
        command,
    )
