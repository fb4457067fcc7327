"""The workloads: datasets to generate, and the alternating, verified runs over them."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

from bench.data import Dataset, Form, generate, saved_model, tiny_model
from bench.emulator import Backend, BenchEmulator, RequestCounts
from bench.noise import busy_seconds, process_seconds
from bench.tools import Context, Tool
from bench.verify import check_tree

MiB = 1 << 20
Mode = Literal["cold", "noop"]


class CaseSpec(NamedTuple):
    """One benchmark case before its data exists; sizes are at scale 1."""

    id: str
    title: str
    mode: Mode
    bucket: str
    form: Form
    models: int
    versions_per_model: int
    big: int  # variables bytes per version (0: tiny versions)
    shards: int
    tools: tuple[str, ...]


PEERS = ("rclone", "rclone+extract", "seed", "gcloud", "ours")
NOOP_PEERS = ("rclone", "ours")
RSS_PEERS = ("seed", "ours")


def _cold(name: str, title: str, form: Form, versions: int, big: int, shards: int = 1,
          tools: tuple[str, ...] = PEERS, models: int = 4) -> CaseSpec:  # fmt: skip
    per_model = max(versions // models, 1)
    return CaseSpec(name, title, "cold", name.lower(), form, models, per_model, big, shards, tools)


def _noop(name: str, title: str, form: Form) -> CaseSpec:
    return CaseSpec(name, title, "noop", name.lower(), form, 100, 10, 0, 1, NOOP_PEERS)


# W1: cold sync from empty. W2: a second, no-op run. W3: one big version, for peak RSS.
SPECS: tuple[CaseSpec, ...] = (
    _cold("W1-zip", "cold sync, zip", "zip", 20, 50 * MiB),
    # The W1 is 20 versions x 50 MB in every form: "the same target holds".
    _cold("W1-tgz", "cold sync, tar.gz", "tgz", 20, 50 * MiB),
    _cold("W1-folder", "cold sync, folder form (10 objects each)", "folder", 20, 50 * MiB, 8),
    _noop("W2-zip", "no-op pass, tiny zips", "zip"),
    _noop("W2-folder", "no-op pass, tiny folders (3 objects each)", "folder"),
    _cold("W3-zip-1g", "one 1 GiB version, zip", "zip", 1, 1024 * MiB, 1, RSS_PEERS, 1),
    _cold("W3-zip-100m", "one 100 MiB version, zip", "zip", 1, 100 * MiB, 1, RSS_PEERS, 1),
    _cold("W3-tgz-1g", "one 1 GiB version, tar.gz", "tgz", 1, 1024 * MiB, 1, RSS_PEERS, 1),
    _cold("W3-tgz-100m", "one 100 MiB version, tar.gz", "tgz", 1, 100 * MiB, 1, RSS_PEERS, 1),
)
PREFIX = "bench"

# filesystem serves big objects faster and keeps them out of RAM, but lists by reading every
# object's metadata from disk: W2's thousands of objects need memory (see bench/README.md).
# W3 is about our RSS, not time: memory loads its 2.2 GiB in a quarter of the time.
AUTO_BACKEND: dict[str, Backend] = {"W1": "filesystem", "W2": "memory", "W3": "memory"}


class Sample(NamedTuple):
    tool: str
    rep: int  # -1: the untimed first sync of a no-op case
    other_cpu: float  # CPU s used meanwhile by neither contender nor emulator: noise
    wall: float
    cpu: float
    max_rss_kb: int
    returncode: int
    problems: list[str]
    requests: RequestCounts

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.problems


class CaseResult(NamedTuple):
    spec: CaseSpec
    dataset: Dataset
    skipped: dict[str, str]  # tool -> reason
    primed: dict[str, Sample]  # noop mode: the untimed first sync
    samples: list[Sample]
    backend: Backend  # the emulator's storage


def build_dataset(spec: CaseSpec, data_dir: Path, scale: float) -> Dataset:
    models, files = spec.models, saved_model(max(int(spec.big * scale), 1), spec.shards)
    if spec.big == 0:  # tiny versions: scale their number instead of their size
        models, files = max(1, round(spec.models * scale)), tiny_model()
    return generate(data_dir, spec.bucket, PREFIX, spec.form, models, spec.versions_per_model,
                    files)  # fmt: skip


def _clear(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


class Runner:
    """Runs cases against one emulator, printing a line per run."""

    def __init__(self, emulator: BenchEmulator, workdir: Path, workers: int,
                 say: Callable[[str], None] = print) -> None:  # fmt: skip
        self.emulator = emulator
        self.workdir = workdir
        self.workers = workers
        self.say = say

    def context(self, case_id: str, tool: Tool, dataset: Dataset) -> Context:
        base = self.workdir / case_id / _slug(tool.name)
        return Context(self.emulator.url, dataset, base / "dest", base / "staging",
                       base / "log.txt", self.workers)  # fmt: skip

    def once(self, case_id: str, tool: Tool, ctx: Context, rep: int) -> Sample:
        os.sync()  # the previous run's dirty pages are written back on nobody's clock
        offset = self.emulator.log_offset()
        busy, emulator_cpu = busy_seconds(), process_seconds(self.emulator.pid)
        outcome = tool.run(ctx)
        m = outcome.measured
        emulator_cpu = process_seconds(self.emulator.pid) - emulator_cpu
        other_cpu = max(busy_seconds() - busy - m.cpu - emulator_cpu, 0.0)
        problems = [f"exit status {m.returncode} (see {ctx.log})"] if m.returncode else []
        problems += check_tree(outcome.tree, outcome.expected)
        requests = self.emulator.requests_since(offset)
        sample = Sample(tool.name, rep, other_cpu, m.wall, m.cpu, m.max_rss_kb, m.returncode,
                        problems, requests)  # fmt: skip
        status = "ok" if sample.ok else "FAILED: " + "; ".join(problems)
        self.say(f"  {case_id:<12} {rep if rep >= 0 else 'prime':>5} {tool.name:<15}"
                 f"{m.wall:8.2f} s  RSS {m.max_rss_kb / 1024:7.0f} MiB  "
                 f"req {requests.total:5d}  other CPU {other_cpu:5.1f} s  {status}")  # fmt: skip
        return sample

    def run_case(
        self, spec: CaseSpec, dataset: Dataset, tools: list[Tool], runs: int
    ) -> CaseResult:
        skipped: dict[str, str] = {}
        active: list[Tool] = []
        for tool in tools:
            if tool.name not in spec.tools:
                continue
            reason = tool.unavailable(spec.form)
            if reason:
                skipped[tool.name] = reason
                self.say(f"  {spec.id:<12} {tool.name}: {reason}")
            else:
                active.append(tool)
        contexts = {t.name: self.context(spec.id, t, dataset) for t in active}
        primed: dict[str, Sample] = {}
        if spec.mode == "noop":
            for tool in active:
                ctx = contexts[tool.name]
                _clear(ctx.dest, ctx.staging)
                primed[tool.name] = self.once(spec.id, tool, ctx, -1)
            active = [t for t in active if primed[t.name].ok]
        samples: list[Sample] = []
        for rep in range(runs):
            k = rep % len(active) if active else 0
            for tool in active[k:] + active[:k]:
                ctx = contexts[tool.name]
                if spec.mode == "cold":
                    _clear(ctx.dest, ctx.staging)
                samples.append(self.once(spec.id, tool, ctx, rep))
                if spec.mode == "cold":  # before its pages are written back: less to sync
                    _clear(ctx.dest, ctx.staging)
        return CaseResult(spec, dataset, skipped, primed, samples, self.emulator.backend)


def run_workload(
    name: str,
    specs: list[CaseSpec],
    tools: list[Tool],
    workdir: Path,
    scale: float,
    runs: int,
    workers: int,
    backend: Backend | Literal["auto"],
    keep: bool = False,
) -> list[CaseResult]:
    """Generate the data of `specs`, serve it from one emulator, run every case."""
    if backend == "auto":
        backend = AUTO_BACKEND.get(name, "filesystem")
    base = workdir / name
    shutil.rmtree(base, ignore_errors=True)
    data_dir = base / "data"
    data_dir.mkdir(parents=True)
    start = time.perf_counter()
    datasets = [build_dataset(spec, data_dir, scale) for spec in specs]
    size = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
    print(f"{name}: generated {size / MiB:.0f} MiB in {time.perf_counter() - start:.1f} s")
    results: list[CaseResult] = []
    start = time.perf_counter()
    emu = BenchEmulator(base, data_dir, backend).start(timeout=60 + size / (20 * MiB))
    try:
        print(f"{name}: emulator ({backend}) ready in {time.perf_counter() - start:.1f} s")
        runner = Runner(emu, base / "runs", workers)
        for spec, dataset in zip(specs, datasets, strict=True):
            results.append(runner.run_case(spec, dataset, tools, runs))
    finally:
        emu.stop()
    failed = any(not s.ok for r in results for s in [*r.samples, *r.primed.values()])
    if failed:
        print(f"{name}: kept {base} (data, emulator log, tools' logs) to look into the failures")
    elif not keep:
        shutil.rmtree(base, ignore_errors=True)
    return results


def w4_plan(sizes: tuple[int, ...] = (10_000, 50_000, 100_000, 200_000)) -> str:
    """W4: plan over N listed objects (10 per version, 100 versions per model), in-process.

    CPU time (process_time), best of 5, so that other work on a shared machine does not count.
    """
    from gcs_model_sync.complete import Rules
    from gcs_model_sync.layout import RemoteObject, group
    from gcs_model_sync.local import LocalView, Managed
    from gcs_model_sync.plan import make_plan

    # The engine's rules: --settle 60 judged against the listing's Date, objects long settled.
    rules = Rules(now=1_800_000_000.0, settle=60.0)

    rows = []
    for n in sizes:
        objects = [
            RemoteObject(f"models/m{i // 1000:03d}/{(i // 10) % 100 + 1:04d}/part-{i % 10}",
                         1_000_000 + i, 1024, "AAAAAA==",
                         updated=f"2026-11-30T12:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z")
            for i in range(n)
        ]  # fmt: skip
        cold = make_plan(group(objects, "models/"), LocalView({}, frozenset()), rules=rules)
        managed = {
            i.version.id: Managed(i.version.model, i.version.version, i.version.fingerprint)
            for i in cold.installs
        }
        in_sync = LocalView(managed, frozenset(managed))
        best = {"cold": float("inf"), "in sync": float("inf")}
        for _ in range(5):
            for label, view in (("cold", LocalView({}, frozenset())), ("in sync", in_sync)):
                started = time.process_time()
                plan = make_plan(group(objects, "models/"), view, rules=rules)  # as the engine
                best[label] = min(best[label], time.process_time() - started)
                assert label == "cold" or not plan.installs
        rows.append(
            f"{n:,} objects: {best['cold'] * 1000:.0f} ms cold, {best['in sync'] * 1000:.0f} ms "
            f"in sync ({best['in sync'] / n * 1e6:.1f} us/object)"
        )
    return "W4 planning (CPU, best of 5): " + "; ".join(rows)
