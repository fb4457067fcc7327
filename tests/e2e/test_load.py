"""Load: many objects, and a loop that runs a thousand passes without growing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.support.probes import metric, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_ten_thousand_objects_cold_then_noop(sync: Sync) -> None:
    keys = [
        sync.key(f"model{m:03d}/{v}/part-{p:02d}")
        for m in range(100)
        for v in range(1, 11)
        for p in range(10)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: sync.bucket.put(k, k.encode()), keys))

    cold = sync.once("--workers", "8", "--log-format", "json", timeout=900)
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert sum(len(sync.versions(f"model{m:03d}")) for m in range(100)) == 1000
    sample = sync.version("model042/7")
    assert sample["part-03"] == sync.key("model042/7/part-03").encode()

    noop = sync.once("--log-format", "json")
    assert noop.returncode == 0
    done = next(json.loads(x) for x in noop.stderr.splitlines() if '"pass_done"' in x)
    assert done["outcome"] == "noop"
    assert done["list_requests"] == 10
    assert done["object_reads"] == 0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_thousand_short_passes_keep_memory_flat(sync: Sync) -> None:
    for m in range(5):
        sync.bucket.put_zip(sync.key(f"m{m}/1.zip"), {"saved_model.pb": b"x"})
    with sync.sidecar("--interval", "0.005", "-q") as (proc, port):
        passes = 'gcs_model_sync_passes_total{outcome="noop"}'
        wait_for(lambda: metric(port, passes) >= 100, timeout=120, what="100 passes")
        at_100 = rss_kib(proc.pid)
        wait_for(lambda: metric(port, passes) >= 1000, timeout=600, what="1000 passes")
        at_1000 = rss_kib(proc.pid)
        assert proc.poll() is None
    assert at_1000 - at_100 < 4 * 1024, f"RSS grew from {at_100} KiB to {at_1000} KiB"
