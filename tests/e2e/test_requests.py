"""Request budgets, counted on the wire by the proxy: polling must stay cheap."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import Sync
from tests.support.faultproxy import FaultProxy


def test_noop_pass_costs_one_list_request_per_thousand_objects(
    proxied: Sync, proxy: FaultProxy
) -> None:
    keys = [
        proxied.key(f"model{m:02d}/{v}/part-{p}")
        for m in range(50)
        for v in (1, 2)
        for p in range(10)
    ]
    keys.append(proxied.key("README.md"))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: proxied.bucket.put(k, k.encode()), keys))
    assert len(keys) == 1001
    cold = proxied.once()
    assert cold.returncode == 0, cold.stderr
    assert proxy.counts["download"] == 1000
    proxy.reset_counts()

    noop = proxied.once()

    assert noop.returncode == 0, noop.stderr
    assert proxy.counts["list"] == math.ceil(len(keys) / 1000) == 2
    assert sum(proxy.counts.values()) == 2  # no object reads, no metadata calls, nothing else


def test_cold_pass_reads_each_object_exactly_once(proxied: Sync, proxy: FaultProxy) -> None:
    from tests.support.models import sample_files

    proxied.bucket.put_zip(proxied.key("a/1.zip"), sample_files("a"))
    proxied.bucket.put_tar(proxied.key("a/2.tar.gz"), sample_files("b"), gz=True)
    proxied.bucket.put_folder(proxied.key("b/3"), sample_files("c"))

    assert proxied.once().returncode == 0

    assert proxy.counts["list"] == 1
    assert proxy.counts["download"] == 2 + len(sample_files("c"))
    assert proxy.counts["metadata"] == 0
