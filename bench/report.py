"""Medians, ratios and markdown tables of the samples; the JSON record of a whole run."""

from __future__ import annotations

import statistics
from typing import Any, NamedTuple

from bench.emulator import RequestCounts
from bench.workloads import CaseResult, LinkUse, Sample

MiB = 1 << 20
TARGET_VS_RCLONE = 1.5


class Summary(NamedTuple):
    tool: str
    ok: int
    runs: int
    median: float | None  # seconds, over the runs that verified
    low: float | None
    high: float | None
    cpu: float | None
    peak_rss_kb: int  # the highest over all runs
    requests: RequestCounts  # per run, the median of each count
    link: LinkUse | None = None  # shaped cases: per run, the median of each figure

    def as_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["requests"] = self.requests._asdict()
        d["link"] = self.link._asdict() if self.link else None
        return d


def summarize(tool: str, samples: list[Sample]) -> Summary:
    good = [s for s in samples if s.ok]
    walls = [s.wall for s in good]
    counts = RequestCounts(
        *(statistics.median_low([s.requests[i] for s in samples]) if samples else 0
          for i in range(len(RequestCounts._fields)))
    )  # fmt: skip
    links = [s.link for s in samples if s.link]
    link = None
    if links:
        link = LinkUse(
            statistics.median_low(u.connections for u in links),
            statistics.median_low(u.requests for u in links),
            statistics.median_low(u.bytes_down for u in links),
            statistics.median(u.cpu for u in links),
        )
    return Summary(
        tool,
        len(good),
        len(samples),
        statistics.median(walls) if walls else None,
        min(walls) if walls else None,
        max(walls) if walls else None,
        statistics.median(s.cpu for s in good) if good else None,
        max((s.max_rss_kb for s in samples), default=0),
        counts,
        link,
    )


def summaries(result: CaseResult) -> dict[str, Summary]:
    names = [n for n in result.spec.tools if any(s.tool == n for s in result.samples)]
    return {n: summarize(n, [s for s in result.samples if s.tool == n]) for n in names}


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(x: float | None, pattern: str = "{:.2f}") -> str:
    return "—" if x is None else pattern.format(x)


def describe(result: CaseResult) -> str:
    ds, spec = result.dataset, result.spec
    objects = len(ds.objects)
    link = f"; link: {result.link.describe()}" if result.link else ""
    if spec.shaped and not result.link:
        link = "; NO link (--no-link): straight to the emulator"
    return (f"{spec.id}: {spec.title}; versions: {ds.versions}, models: {ds.models}, "
            f"objects: {objects}, {ds.payload_bytes / MiB:.0f} MiB extracted; "
            f"emulator: {result.backend}{link}")  # fmt: skip


def table(result: CaseResult) -> list[str]:
    """The case as a markdown table, one row per tool, skipped tools included."""
    sums = summaries(result)
    cold = result.spec.mode == "cold"
    base = sums.get("rclone") or sums.get("rclone-copy")
    ours = sums.get("ours")
    shaped = result.link is not None
    rows = [
        f"### {describe(result)}",
        "",
        "| tool | ok runs | median s | min-max s | MiB/s | ÷ rclone | ours ÷ tool "
        "| peak RSS MiB | CPU s | requests list/meta/read/other |"
        + (" connections | proxy CPU s |" if shaped else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if shaped else ""),
    ]
    for name in result.spec.tools:
        if name in result.skipped:
            blank = "  |" * (10 if shaped else 8)
            rows.append(f"| {name} | {result.skipped[name]} |{blank}")
            continue
        s = sums.get(name)
        if s is None:
            continue
        rate = result.dataset.payload_bytes / MiB / s.median if cold and s.median else None
        r = s.requests
        rows.append(
            f"| {name} | {s.ok}/{s.runs} | {_fmt(s.median)} "
            f"| {_fmt(s.low) + '-' + _fmt(s.high) if s.ok else '—'} | {_fmt(rate, '{:.0f}')} "
            f"| {_fmt(ratio(s.median, base.median if base else None))} "
            f"| {_fmt(ratio(ours.median if ours else None, s.median))} "
            f"| {s.peak_rss_kb / 1024:.0f} | {_fmt(s.cpu, '{:.1f}')} "
            f"| {r.list}/{r.metadata}/{r.read}/{r.other} |"
            + (f" {s.link.connections} | {s.link.cpu:.1f} |" if s.link else "")
        )
    rows += ["", *notes(result, sums), ""]
    return rows


def notes(result: CaseResult, sums: dict[str, Summary]) -> list[str]:
    """The verdicts the case exists for."""
    spec = result.spec
    ours, rclone = sums.get("ours"), sums.get("rclone")
    noise = [x.other_cpu for x in result.samples]
    lines = []
    if noise:
        lines.append(f"- CPU used by other processes during a run: median "
                     f"{statistics.median(noise):.1f} s, max {max(noise):.1f} s")  # fmt: skip
    for s in sums.values():
        u = s.link
        if u and u.requests != s.requests.total:  # the proxy's view: a bypass would show here
            lines.append(f"- {s.tool}: the link saw {u.requests} requests, the emulator logged "
                         f"{s.requests.total} (medians)")  # fmt: skip
    for s in sums.values():
        bad = [x for x in result.samples if x.tool == s.tool and not x.ok]
        for x in bad[:2]:
            lines.append(f"- **{s.tool} run {x.rep} failed**: {'; '.join(x.problems)}")
    if "ours" in result.skipped:
        lines.append(f"- ours: {result.skipped['ours']}")
        return lines
    if ours is None:
        return lines
    if spec.id.startswith("W1") and rclone:
        r = ratio(ours.median, rclone.median)
        verdict = "no good runs" if r is None else ("PASS" if r <= TARGET_VS_RCLONE else "MISS")
        lines.append(f"- target ours <= {TARGET_VS_RCLONE}x rclone: {_fmt(r)}x, {verdict}")
    if spec.mode == "noop":
        n = ours.requests
        lines.append(f"- ours no-op requests: {n.list} list, {n.metadata} metadata, "
                     f"{n.read} object reads, {n.other} other ({n.errors} errors)")  # fmt: skip
    return lines


def rss_comparison(results: list[CaseResult]) -> list[str]:
    """W3: peak RSS for the 1 GiB version against the 100 MiB one, per tool and format."""
    by_id = {r.spec.id: r for r in results}
    lines = []
    for form in ("zip", "tgz", "folder"):
        big, small = by_id.get(f"W3-{form}-1g"), by_id.get(f"W3-{form}-100m")
        if not big or not small:
            continue
        big_sums, small_sums = summaries(big), summaries(small)
        for tool in [t for t in big_sums if t in small_sums]:
            b, s = big_sums[tool].peak_rss_kb / 1024, small_sums[tool].peak_rss_kb / 1024
            lines.append(
                f"- W3 {form} {tool}: peak RSS {b:.0f} MiB for a "
                f"{big.dataset.payload_bytes / MiB:.0f} MiB version vs {s:.0f} MiB for "
                f"{small.dataset.payload_bytes / MiB:.0f} MiB ({_fmt(ratio(b, s))}x)"
            )
    return lines


def case_record(result: CaseResult) -> dict[str, Any]:
    ds = result.dataset
    return {
        "id": result.spec.id,
        "title": result.spec.title,
        "mode": result.spec.mode,
        "emulator_backend": result.backend,
        "link": result.link._asdict() if result.link else None,
        "dataset": {
            "source": ds.source,
            "form": ds.form,
            "models": ds.models,
            "versions": ds.versions,
            "objects": len(ds.objects),
            "payload_bytes": ds.payload_bytes,
        },
        "skipped": result.skipped,
        "primed": {k: _sample(v) for k, v in result.primed.items()},
        "samples": [_sample(s) for s in result.samples],
        "summary": {k: v.as_dict() for k, v in summaries(result).items()},
    }


def _sample(s: Sample) -> dict[str, Any]:
    d = s._asdict()
    d["requests"] = s.requests._asdict()
    d["link"] = s.link._asdict() if s.link else None
    d["ok"] = s.ok
    return d
