"""The contenders: each runs as its own process(es), timed, with its peak RSS from wait4(2)."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from bench.data import Dataset, Form
from tests.support.cli import cli_env

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


class Measured(NamedTuple):
    wall: float  # seconds
    cpu: float  # user + system seconds, the process and the children it waited for
    max_rss_kb: int  # peak RSS of the largest single process
    returncode: int


class Context(NamedTuple):
    """Where one tool works for one case."""

    url: str
    dataset: Dataset
    dest: Path  # the model base path a sync tool publishes into
    staging: Path  # where copy-only tools put the archives
    log: Path  # the tool's stdout and stderr, appended
    workers: int | None  # ours --workers; None: every tool with its own defaults (W5)


class Outcome(NamedTuple):
    measured: Measured
    tree: Path  # the folder to check
    expected: dict[str, str]  # relative path -> sha256 it must hold


class Tool(Protocol):
    name: str

    def unavailable(self, form: Form) -> str | None:
        """Why this tool cannot run on `form` here, or None."""
        ...

    def run(self, ctx: Context) -> Outcome: ...


def run_measured(
    cmd: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
) -> Measured:
    """Run `cmd` to completion; a run past `timeout` is killed with its process group."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"$ {shlex.join(cmd)}\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode)


def combine(parts: list[Measured], wall: float) -> Measured:
    """Steps run one after another, as one contender."""
    rc = next((p.returncode for p in parts if p.returncode), 0)
    return Measured(wall, sum(p.cpu for p in parts), max(p.max_rss_kb for p in parts), rc)


def _copy_result(ctx: Context, measured: Measured) -> Outcome:
    """Copy-only tools: archives land in staging; folder-form versions are the published tree."""
    if ctx.dataset.form == "folder":
        return Outcome(measured, ctx.dest, ctx.dataset.published)
    return Outcome(measured, ctx.staging, ctx.dataset.objects)


def _missing(*programs: str) -> str | None:
    absent = [p for p in programs if shutil.which(p) is None]
    return f"skipped (not installed: {', '.join(absent)})" if absent else None


def rclone_remote(ctx: Context) -> str:
    ds = ctx.dataset
    return f":gcs,endpoint='{ctx.url}/storage/v1/',anonymous=true:{ds.bucket}/{ds.prefix}"


class Rclone:
    """(a) `rclone sync` of the objects alone, 4 transfers."""

    name = "rclone"

    def unavailable(self, form: Form) -> str | None:
        return _missing("rclone")

    def run(self, ctx: Context) -> Outcome:
        target = ctx.dest if ctx.dataset.form == "folder" else ctx.staging
        cmd = ["rclone", "sync", rclone_remote(ctx), str(target), "--transfers", "4"]
        return _copy_result(ctx, run_measured(cmd, ctx.log))


class RcloneCopy:
    """W5: `rclone copy REMOTE DIR` with rclone's defaults: 4 transfers, 8 checkers, and files
    over 250 MiB fetched as 4 ranged streams at once (--multi-thread-cutoff/-streams)."""

    name = "rclone-copy"

    def unavailable(self, form: Form) -> str | None:
        return _missing("rclone")

    def run(self, ctx: Context) -> Outcome:
        target = ctx.dest if ctx.dataset.form == "folder" else ctx.staging
        cmd = ["rclone", "copy", rclone_remote(ctx), str(target)]
        return _copy_result(ctx, run_measured(cmd, ctx.log))


class RcloneExtract:
    """(b) `rclone sync` of the archives, then `unzip` / `tar -xzf` of each into its model dir."""

    name = "rclone+extract"

    def unavailable(self, form: Form) -> str | None:
        if form == "folder":
            return "not applicable (rclone alone publishes folder-form versions)"
        return _missing("rclone", "unzip" if form == "zip" else "tar")

    def run(self, ctx: Context) -> Outcome:
        start = time.perf_counter()
        cmd = ["rclone", "sync", rclone_remote(ctx), str(ctx.staging), "--transfers", "4"]
        parts = [run_measured(cmd, ctx.log)]
        for key in sorted(ctx.dataset.objects):
            archive = ctx.staging / key
            model_dir = ctx.dest / key.split("/", 1)[0]
            model_dir.mkdir(parents=True, exist_ok=True)
            if key.endswith(".zip"):
                cmd = ["unzip", "-q", "-o", str(archive), "-d", str(model_dir)]
            else:
                cmd = ["tar", "-xzf", str(archive), "-C", str(model_dir)]
            parts.append(run_measured(cmd, ctx.log))
        measured = combine(parts, time.perf_counter() - start)
        return Outcome(measured, ctx.dest, ctx.dataset.published)


class SeedWay:
    """(c) google-cloud-storage download of each object in turn, then ZipFile.extractall."""

    name = "seed"

    def unavailable(self, form: Form) -> str | None:
        if importlib.util.find_spec("google.cloud.storage") is None:
            return "skipped (not installed: google-cloud-storage)"
        return None

    def run(self, ctx: Context) -> Outcome:
        ds = ctx.dataset
        cmd = [
            sys.executable, str(BENCH / "seed_way.py"),
            "--endpoint", ctx.url, "--bucket", ds.bucket, "--prefix", ds.prefix,
            "--dest", str(ctx.dest), "--tmp", str(ctx.staging),
        ]  # fmt: skip
        return Outcome(run_measured(cmd, ctx.log), ctx.dest, ds.published)


def gcloud_env(config_dir: Path, url: str) -> dict[str, str]:
    """gcloud against the emulator (or the shaped link in front of it), without credentials."""
    config_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        CLOUDSDK_CONFIG=str(config_dir),
        CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=f"{url}/",
        CLOUDSDK_AUTH_DISABLE_CREDENTIALS="True",
        CLOUDSDK_CORE_PROJECT="test",
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
    )
    return env


class Gcloud:
    """(d) `gcloud storage rsync -r` of the objects."""

    name = "gcloud"

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir

    def unavailable(self, form: Form) -> str | None:
        return _missing("gcloud")

    def run(self, ctx: Context) -> Outcome:
        env = gcloud_env(self.config_dir, ctx.url)
        target = ctx.dest if ctx.dataset.form == "folder" else ctx.staging
        target.mkdir(parents=True, exist_ok=True)
        cmd = ["gcloud", "storage", "rsync", "-r", ctx.dataset.source, str(target)]
        return _copy_result(ctx, run_measured(cmd, ctx.log, env=env))


class GcloudCp(Gcloud):
    """W5: `gcloud storage cp -r gs://B/P DIR` with its defaults (sliced downloads, its own
    process and thread counts). DIR exists, so the copy lands in `DIR/<last part of P>/`."""

    name = "gcloud-cp"

    def run(self, ctx: Context) -> Outcome:
        env = gcloud_env(self.config_dir, ctx.url)
        target = ctx.dest if ctx.dataset.form == "folder" else ctx.staging
        target.mkdir(parents=True, exist_ok=True)
        measured = run_measured(self.command(ctx.dataset.source, target), ctx.log, env=env)
        tree = target / ctx.dataset.prefix.rstrip("/").rsplit("/", 1)[-1]
        expected = ctx.dataset.published if ctx.dataset.form == "folder" else ctx.dataset.objects
        return Outcome(measured, tree, expected)

    def command(self, source: str, target: Path) -> list[str]:
        return ["gcloud", "storage", "cp", "-r", source, str(target)]


class GcloudCpDurable(GcloudCp):
    """W5: `gcloud storage cp -r` then `sync -f` of its output (syncfs of that file system):
    gcloud's copy made as durable as ours, which syncs before it publishes."""

    name = "gcloud-cp-durable"

    def command(self, source: str, target: Path) -> list[str]:
        script = 'gcloud storage cp -r "$1" "$2" && sync -f "$2"'
        return ["sh", "-c", script, "sh", source, str(target)]


class Ours:
    """(e) `python -m gcs_model_sync once --source gs://B/P --dest DIR [--workers N] [extra]`,
    run from `repo` (its package first on the path: a checkout of another commit works)."""

    name = "ours"

    def __init__(self, python: str, repo: Path = REPO, extra: Sequence[str] = ()) -> None:
        self.python = python
        self.repo = repo
        self.extra = list(extra)
        self._why_not: str | bool | None = False  # False: not probed yet
        # The pass's own time, from its pass_done log event: the process minus start-up.
        self.in_process: dict[str, list[float]] = {}

    def command(self, ctx: Context) -> list[str]:
        workers = ["--workers", str(ctx.workers)] if ctx.workers is not None else []
        return [
            self.python, "-m", "gcs_model_sync", "once",
            "--source", ctx.dataset.source, "--dest", str(ctx.dest),
            *workers, "--log-format", "json", *self.extra,
        ]  # fmt: skip

    def env(self, url: str) -> dict[str, str]:
        env = cli_env(url)
        if self.repo != REPO:  # cwd is on the path already with -m; this says it twice
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(self.repo), env.get("PYTHONPATH")) if p
            )
        return env

    def unavailable(self, form: Form) -> str | None:
        if self._why_not is False:
            probe = subprocess.run(
                [self.python, "-m", "gcs_model_sync", "once", "--help"],
                cwd=self.repo,
                env=self.env("http://127.0.0.1:1"),
                capture_output=True,
                text=True,
                timeout=120,
            )
            last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
            self._why_not = None if probe.returncode == 0 else f"pending (not runnable: {last})"
        return self._why_not if isinstance(self._why_not, str) else None

    def run(self, ctx: Context) -> Outcome:
        measured = run_measured(self.command(ctx), ctx.log, env=self.env(ctx.url), cwd=self.repo)
        seconds = last_pass_seconds(ctx.log)
        if seconds is not None:
            self.in_process.setdefault(ctx.dataset.source, []).append(seconds)
        return Outcome(measured, ctx.dest, ctx.dataset.published)


def last_pass_seconds(log: Path) -> float | None:
    """`seconds` of the last pass_done event ours wrote to its log."""
    import json

    found = None
    for line in log.read_text(errors="replace").splitlines():
        if '"pass_done"' in line:
            try:
                found = float(json.loads(line)["seconds"])
            except (ValueError, KeyError):
                continue
    return found


def all_tools(
    python: str, workdir: Path, ours_repo: Path = REPO, ours_args: Sequence[str] = ()
) -> list[Tool]:
    config = workdir / "gcloud-config"
    return [
        Rclone(),
        RcloneExtract(),
        SeedWay(),
        Gcloud(config),
        RcloneCopy(),
        GcloudCp(config),
        GcloudCpDurable(config),
        Ours(python, ours_repo.resolve(), ours_args),
    ]
