"""The --on-change command: run after a pass that published, pruned or changed a model file,
without a shell; and how it and --verify are run, bounded and read.

A hook that fails is retried after the next pass with everything that changed since its last
success, so a notification is never lost to one bad moment (git-sync's rule).
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gcs_model_sync.config import Config
from gcs_model_sync.logs import event
from gcs_model_sync.redaction import redact, scrub, secrets_in

if TYPE_CHECKING:
    from gcs_model_sync.retry import StopToken

__all__ = ["OUTPUT_LINES", "Finished", "Hook", "redact", "run_bounded"]

OUTPUT_LINES = 20  # of a successful hook's stdout and stderr, logged at -v
POLL = 0.1  # seconds between looks at the command and the stop token
GRACE = 0.5  # seconds the output of a command that has exited is still read
KEEP = 64 * 1024  # bytes kept of each of its streams: the end, where errors are


@dataclass(frozen=True, slots=True)
class Finished:
    """How a command ended: its exit status (None: killed at its deadline or on a stop) and
    the last KEEP bytes of what it wrote."""

    returncode: int | None
    stdout: bytes
    stderr: bytes


def run_bounded(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    timeout: float,
    cwd: Path | None = None,
    stop: StopToken | None = None,
) -> Finished:
    """Run `argv` in a session of its own for at most `timeout` seconds (or until `stop`),
    then kill its process group; OSError when it cannot start.

    Both waits are bounded: for the command, and for its output. A child that left the
    group (`setsid`, a daemon) may hold the pipes open long after the command exited, so
    reading to EOF could outlast any timeout; once the command itself has exited, its output
    is read for GRACE seconds at most, and its exit status is the outcome.
    """
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its children are stopped with it
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    selector = selectors.DefaultSelector()
    for fd in kept:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    drain_until: float | None = None
    killed = False
    try:
        while True:
            now = time.monotonic()
            if drain_until is None and proc.poll() is not None:
                drain_until = now + GRACE
            if drain_until is not None:
                if not selector.get_map() or now >= drain_until:
                    break
                wait = drain_until - now
            elif now >= deadline or (stop is not None and stop.is_set()):
                _kill_group(proc)
                killed = True
                continue
            else:
                wait = min(POLL, deadline - now)
            if selector.get_map():
                for key, _ in selector.select(min(wait, POLL)):
                    _read_some(key.fd, kept[key.fd], selector)
            else:  # its output is closed: only the command itself is left to wait for
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(min(wait, POLL))
    finally:
        selector.close()
        if proc.poll() is None:  # an error or a signal here: never leave it running
            _kill_group(proc)
        proc.stdout.close()
        proc.stderr.close()
    out, err = kept.values()
    return Finished(None if killed else proc.returncode, bytes(out), bytes(err))


def _read_some(fd: int, into: bytearray, selector: selectors.BaseSelector) -> None:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return
    if not data:
        selector.unregister(fd)
        return
    into += data
    if len(into) > KEEP:
        del into[: len(into) - KEEP]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.wait()


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
        if not argv:
            event(logging.ERROR, "hook_failed", "--on-change is empty")
            return "failure"
        try:
            done = run_bounded(argv, env=env, timeout=self.timeout)
        except OSError as exc:
            event(logging.ERROR, "hook_failed", f"--on-change could not start: {exc}")
            return "failure"
        if done.returncode is None:
            event(logging.ERROR, "hook_failed", f"--on-change timed out after {self.timeout:g}s")
            return "timeout"
        # what it printed may repeat what its command line carries (curl -v, an echo)
        output = scrub(
            (done.stdout + done.stderr).decode(errors="replace").strip(),
            secrets_in(self.command),
        )
        if done.returncode != 0:
            event(
                logging.ERROR,
                "hook_failed",
                f"--on-change exited {done.returncode}: {output[-500:]}",
                exit_code=done.returncode,
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


def hook_for(config: Config) -> Hook | None:
    """--on-change as a Hook (None without one); the command sees DEST and SOURCE."""
    if not config.on_change:
        return None
    env = {"GCS_MODEL_SYNC_DEST": str(config.dest), "GCS_MODEL_SYNC_SOURCE": str(config.source)}
    return Hook(config.on_change, config.hook_timeout, env)
