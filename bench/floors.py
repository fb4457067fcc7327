"""What this machine allows a durable install at best, measured in the same run as W5: the link
floor (the bytes over the connections at the shaped rate, plus one request's delay) and the
durable-write floor (the same bytes written and fdatasync'd on the destination's file system,
as `dd ... conv=fdatasync` does). A tool cannot beat the larger of the two."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Mapping
from pathlib import Path

from bench.report import Summary
from bench.workloads import CaseResult, LinkOptions

MiB = 1 << 20
CHUNK = 16 * MiB


def link_floor(size: int, connections: int, link: LinkOptions) -> float | None:
    """Seconds to move `size` bytes over `connections` capped at link.rate each, plus one
    request's delay; None for a link without a cap."""
    if not link.rate or connections < 1:
        return None
    return size / (connections * link.rate) + link.delay


def durable_write_floor(folder: Path, size: int, runs: int = 3) -> float:
    """Median seconds to write `size` bytes into a new file in `folder` and fdatasync it; the
    page cache is written back first (os.sync), on nobody's clock, as before each bench run."""
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(CHUNK)  # incompressible, written again and again
    times = []
    for n in range(runs):
        path = folder / f"floor-{n}.bin"
        os.sync()
        start = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = size
            while left > 0:
                left -= os.write(fd, block[: min(left, CHUNK)])
            os.fdatasync(fd)
        finally:
            os.close(fd)
        times.append(time.perf_counter() - start)
        path.unlink()
    return statistics.median(times)


def verdict(result: CaseResult, sums: Mapping[str, Summary], durable: float) -> str:
    """One line: both floors, ours against the larger, and ours against a durable gcloud."""
    size, link, ours = result.dataset.payload_bytes, result.link, sums["ours"]
    connections = ours.link.connections if ours.link else 0
    floor = link_floor(size, connections, link) if link else None
    said = f"{result.spec.id} floors for {size / MiB:.0f} MiB: durable write {durable:.2f} s"
    if link and floor is not None:
        said += (
            f", link {floor:.2f} s ({connections} connections x {link.rate / MiB:g} MiB/s "
            f"+ {link.delay * 1000:g} ms)"
        )
    if ours.median is None:
        return said
    said += (
        f"; ours {ours.median:.2f} s = {ours.median / max(durable, floor or 0.0):.2f}x max(floors)"
    )
    gcloud = sums.get("gcloud-cp-durable")
    if gcloud is not None and gcloud.median:
        said += f", {ours.median / gcloud.median:.2f}x durable gcloud ({gcloud.median:.2f} s)"
    return said
