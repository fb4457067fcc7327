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
from bench.shaped import ShapedLink
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
    shaped: bool = False  # through the shaped link (bench/shaped.py), not straight to the emulator


PEERS = ("rclone", "rclone+extract", "seed", "gcloud", "ours")
NOOP_PEERS = ("rclone", "ours")
RSS_PEERS = ("seed", "ours")
LINK_PEERS = ("rclone-copy", "gcloud-cp", "gcloud-cp-durable", "ours")


def _cold(name: str, title: str, form: Form, versions: int, big: int, shards: int = 1,
          tools: tuple[str, ...] = PEERS, models: int = 4,
          shaped: bool = False) -> CaseSpec:  # fmt: skip
    per_model = max(versions // models, 1)
    return CaseSpec(name, title, "cold", name.lower(), form, models, per_model, big, shards, tools,
                    shaped)  # fmt: skip


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
    _cold("W3-folder-1g", "one 1 GiB version, folder form (one 1 GiB file)", "folder", 1,
          1024 * MiB, 1, RSS_PEERS, 1),
    _cold("W3-folder-100m", "one 100 MiB version, folder form (one 100 MiB file)", "folder", 1,
          100 * MiB, 1, RSS_PEERS, 1),
    # W5: over the shaped link (each connection capped, every request delayed), cold.
    _cold("W5-big", "one version holding one 1 GiB file (folder form), shaped link", "folder",
          1, 1024 * MiB, 1, LINK_PEERS, 1, shaped=True),
    _cold("W5-many", "W1-zip's data (20 x 50 MiB zips, 4 models), shaped link", "zip", 20,
          50 * MiB, 1, LINK_PEERS, shaped=True),
)  # fmt: skip
PREFIX = "bench"

# filesystem serves big objects faster and keeps them out of RAM, but lists by reading every
# object's metadata from disk: W2's thousands of objects need memory (see bench/README.md).
# W3 is about our RSS, not time: memory loads its 2.2 GiB in a quarter of the time.
AUTO_BACKEND: dict[str, Backend] = {
    "W1": "filesystem",
    "W2": "memory",
    "W3": "memory",
    "W5": "memory",  # 2 GiB (~6 GB of RAM): loads 4x faster; 1 GiB ranged reads as fast or faster
}


class LinkOptions(NamedTuple):
    """The shaped link's settings (bench/shaped.py)."""

    rate: float  # bytes per second, per connection, downstream; 0: no cap
    delay: float  # seconds added to every request
    burst: float  # token bucket size, bytes

    def describe(self) -> str:
        rate = f"{self.rate / MiB:g} MiB/s per connection" if self.rate else "no rate cap"
        return f"{rate}, +{self.delay * 1000:g} ms per request, burst {self.burst / 1024:g} KiB"


class LinkUse(NamedTuple):
    """What one run did on the shaped link, counted by the proxy."""

    connections: int
    requests: int  # request starts seen by the proxy (the emulator's log counts them too)
    bytes_down: int
    cpu: float  # the proxy's CPU seconds during the run


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
    link: LinkUse | None = None  # shaped cases only

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
    link: LinkOptions | None = None  # shaped cases: the link's settings


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
                 say: Callable[[str], None] = print, link: ShapedLink | None = None,
                 link_options: LinkOptions | None = None) -> None:  # fmt: skip
        self.emulator = emulator
        self.workdir = workdir
        self.workers = workers
        self.say = say
        self.link = link  # the shaped link in front of the emulator, for shaped cases
        self.link_options = link_options

    def context(self, case_id: str, tool: Tool, dataset: Dataset, shaped: bool = False) -> Context:
        base = self.workdir / case_id / _slug(tool.name)
        url = self.link.url if shaped and self.link else self.emulator.url
        # On the shaped link every tool runs with its own defaults, as the peers do.
        return Context(url, dataset, base / "dest", base / "staging", base / "log.txt",
                       None if shaped else self.workers)  # fmt: skip

    def once(self, case_id: str, tool: Tool, ctx: Context, rep: int) -> Sample:
        os.sync()  # the previous run's dirty pages are written back on nobody's clock
        link = self.link if self.link and ctx.url == self.link.url else None
        offset = self.emulator.log_offset()
        link_before, link_cpu = (link.stats(), process_seconds(link.pid)) if link else (None, 0.0)
        busy, emulator_cpu = busy_seconds(), process_seconds(self.emulator.pid)
        outcome = tool.run(ctx)
        m = outcome.measured
        emulator_cpu = process_seconds(self.emulator.pid) - emulator_cpu
        used: LinkUse | None = None
        if link and link_before:
            link_cpu = process_seconds(link.pid) - link_cpu
            d = link.stats().since(link_before)
            used = LinkUse(d.connections, d.requests, d.bytes_down, link_cpu)
        other_cpu = max(busy_seconds() - busy - m.cpu - emulator_cpu - link_cpu, 0.0)
        problems = [f"exit status {m.returncode} (see {ctx.log})"] if m.returncode else []
        problems += check_tree(outcome.tree, outcome.expected)
        requests = self.emulator.requests_since(offset)
        sample = Sample(tool.name, rep, other_cpu, m.wall, m.cpu, m.max_rss_kb, m.returncode,
                        problems, requests, used)  # fmt: skip
        status = "ok" if sample.ok else "FAILED: " + "; ".join(problems)
        conns = f"conn {used.connections:3d}  proxy CPU {used.cpu:4.1f} s  " if used else ""
        self.say(f"  {case_id:<12} {rep if rep >= 0 else 'prime':>5} {tool.name:<15}"
                 f"{m.wall:8.2f} s  RSS {m.max_rss_kb / 1024:7.0f} MiB  req {requests.total:5d}"
                 f"  {conns}other CPU {other_cpu:5.1f} s  {status}")  # fmt: skip
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
        contexts = {t.name: self.context(spec.id, t, dataset, spec.shaped) for t in active}
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
        link = self.link_options if spec.shaped else None
        return CaseResult(spec, dataset, skipped, primed, samples, self.emulator.backend, link)


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
    link_options: LinkOptions | None = None,
) -> list[CaseResult]:
    """Generate the data of `specs`, serve it from one emulator, run every case; shaped cases
    reach it through one shaped link with `link_options` (None: straight to the emulator)."""
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
    emu = BenchEmulator(base, data_dir, backend)
    link: ShapedLink | None = None
    if link_options and any(spec.shaped for spec in specs):
        link = ShapedLink(emu.url, link_options.rate, link_options.delay, link_options.burst,
                          log=base / "shaped-link.log")  # fmt: skip
        link.start()
    try:
        # Behind the link, the emulator's own links (mediaLink) must point at the link too.
        emu.start(timeout=60 + size / (20 * MiB), public_url=link.url if link else None)
        print(f"{name}: emulator ({backend}) ready in {time.perf_counter() - start:.1f} s")
        if link and link_options:
            print(f"{name}: shaped link {link.url} -> {emu.url}: {link_options.describe()}")
        runner = Runner(emu, base / "runs", workers, link=link, link_options=link_options)
        for spec, dataset in zip(specs, datasets, strict=True):
            results.append(runner.run_case(spec, dataset, tools, runs))
    finally:
        emu.stop()
        if link:
            link.stop()
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
    from gcs_model_sync.layout import RemoteObject, group
    from gcs_model_sync.local.scan import LocalView
    from gcs_model_sync.local.state import Managed
    from gcs_model_sync.plan.completeness import Rules
    from gcs_model_sync.plan.plan import PlanOptions, make_plan

    # The engine's rules: --settle 60 judged against the listing's Date, objects long settled.
    options = PlanOptions(rules=Rules(now=1_800_000_000.0, settle=60.0))

    rows = []
    for n in sizes:
        objects = [
            RemoteObject(f"models/m{i // 1000:03d}/{(i // 10) % 100 + 1:04d}/part-{i % 10}",
                         1_000_000 + i, 1024, "AAAAAA==",
                         updated=f"2026-11-30T12:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z")
            for i in range(n)
        ]  # fmt: skip
        cold = make_plan(group(objects, "models/"), LocalView({}, frozenset()), options)
        managed = {
            i.version.id: Managed(i.version.model, i.version.version, i.version.fingerprint)
            for i in cold.installs
        }
        in_sync = LocalView(managed, frozenset(managed))
        best = {"cold": float("inf"), "in sync": float("inf")}
        for _ in range(5):
            for label, view in (("cold", LocalView({}, frozenset())), ("in sync", in_sync)):
                started = time.process_time()
                plan = make_plan(group(objects, "models/"), view, options)  # as the engine
                best[label] = min(best[label], time.process_time() - started)
                assert label == "cold" or not plan.installs
        rows.append(
            f"{n:,} objects: {best['cold'] * 1000:.0f} ms cold, {best['in sync'] * 1000:.0f} ms "
            f"in sync ({best['in sync'] / n * 1e6:.1f} us/object)"
        )
    return "W4 planning (CPU, best of 5): " + "; ".join(rows)
