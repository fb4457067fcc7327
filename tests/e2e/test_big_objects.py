"""Big objects: parallel ranges within one connection budget, resumed across passes, and a
rate cap. Sizes are scaled down by --slice-size 1M so that every scenario runs in seconds."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import Sync
from tests.support.faultproxy import Fault, FaultProxy, Record, Rule
from tests.support.models import sample_files
from tests.support.probes import wait_for

MiB = 1024 * 1024
SLICED = ("--slice-size", "1M", "--slice-threshold", "0")
BIG = "variables/variables.data-00000-of-00001"


def big_version(tag: str, size: int = 8 * MiB) -> dict[str, bytes]:
    files = sample_files(tag)
    files[BIG] = random.Random(tag).randbytes(size)
    return files


def partial_dir(sync: Sync) -> Path:
    return sync.dest / ".gcs-model-sync" / "partial"


def recorded_bytes(sync: Sync) -> int:
    """What the partial downloads' records say is already on disk."""
    total = 0
    for record in partial_dir(sync).glob("*.json"):
        try:
            total += sum(s[2] for s in json.loads(record.read_text())["slices"])
        except (OSError, ValueError):
            continue  # being replaced right now
    return total


def ranged_bytes(records: list[Record], name: str, size: int) -> int:
    """Bytes the client asked for of `name` (of `size` bytes) by ranges: `bytes=A-B`, `A-`."""
    total = 0
    for r in records:
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", r.range_header or "")
        if r.kind == "download" and r.name == name and m:
            total += (int(m[2]) + 1 if m[2] else size) - int(m[1])
    return total


def interrupt(proxied: Sync, sig: signal.Signals, at_least: int) -> subprocess.Popen[str]:
    """Start a slowed pass and stop it with `sig` once `at_least` bytes are recorded."""
    proc = proxied.start("once", *SLICED, "--bwlimit", "2M")
    wait_for(lambda: recorded_bytes(proxied) >= at_least, what="a partial download")
    proc.send_signal(sig)
    proc.wait(timeout=20)
    return proc


def test_big_file_in_a_folder_version_is_read_by_parallel_ranges(
    proxied: Sync, proxy: FaultProxy
) -> None:
    files = big_version("a")
    proxied.bucket.put_folder(proxied.key("m/1"), files)

    result = proxied.once(*SLICED, "--connections", "4", "-v")

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/1") == files
    name = proxied.key(f"m/1/{BIG}")
    ranges = [r.range_header for r in proxy.records if r.name == name]
    assert len(ranges) == 8
    assert ranged_bytes(proxy.records, name, 8 * MiB) == 8 * MiB
    at_once = re.search(r"at most (\d+) at once", result.stderr)
    assert at_once, result.stderr
    assert 1 < int(at_once[1]) <= 4
    assert proxy.peak["download"] <= 4
    assert list(partial_dir(proxied).iterdir()) == []


def test_connections_are_one_budget_for_workers_and_slices(
    proxied: Sync, proxy: FaultProxy
) -> None:
    versions = {str(v): big_version(str(v), 4 * MiB) for v in range(1, 5)}
    proxied.bucket.put_zip(proxied.key("m/1.zip"), versions["1"], top="1")
    proxied.bucket.put_tar(proxied.key("m/2.tar.gz"), versions["2"], top="2", gz=True)
    proxied.bucket.put_tar(proxied.key("m/3.tar"), versions["3"], top="3")
    proxied.bucket.put_folder(proxied.key("m/4"), versions["4"])

    # Slowed by --bwlimit so that every worker and slice wants a connection at once.
    result = proxied.once(*SLICED, "--workers", "4", "--connections", "3", "--bwlimit", "8M", "-v")

    assert result.returncode == 0, result.stderr
    for v, files in versions.items():
        assert proxied.version(f"m/{v}") == files
    assert "at most 3 at once" in result.stderr  # responses open at once, as the client held them
    assert proxy.peak["download"] <= 3
    ranged = [r for r in proxy.records if r.kind == "download" and r.range_header]
    assert {r.name for r in ranged} == {
        proxied.key(k) for k in ("m/1.zip", "m/2.tar.gz", "m/3.tar", f"m/4/{BIG}")
    }


def test_sigterm_mid_download_then_rerun_resumes_from_disk(
    proxied: Sync, proxy: FaultProxy
) -> None:
    files = big_version("a")
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    proc = interrupt(proxied, signal.SIGTERM, 3 * MiB)
    assert proc.returncode == 128 + signal.SIGTERM
    on_disk = recorded_bytes(proxied)
    assert on_disk >= 3 * MiB
    assert "resumes with" in proxied.run("plan").stdout
    proxy.reset_counts()

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/1") == files
    assert "resuming" in result.stderr
    assert ranged_bytes(proxy.records, proxied.key(f"m/1/{BIG}"), 8 * MiB) <= 8 * MiB - on_disk
    assert list(partial_dir(proxied).iterdir()) == []


def test_kill_9_mid_download_then_rerun_resumes_from_disk(proxied: Sync, proxy: FaultProxy) -> None:
    files = big_version("k")
    proxied.bucket.put_zip(proxied.key("m/1.zip"), files, top="1")
    interrupt(proxied, signal.SIGKILL, 3 * MiB)
    on_disk = recorded_bytes(proxied)
    proxy.reset_counts()

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/1") == files
    assert "resuming" in result.stderr
    stored = proxied.bucket.bucket.get_blob(proxied.key("m/1.zip")).size
    assert ranged_bytes(proxy.records, proxied.key("m/1.zip"), stored) <= stored - on_disk


def test_connection_resets_mid_range_resume_that_range(proxied: Sync, proxy: FaultProxy) -> None:
    files = big_version("r")
    proxied.bucket.put_tar(proxied.key("m/1.tar.gz"), files, top="1", gz=True)
    reset = proxy.add_rule(
        Rule(kind="download", ranged=True, fault=Fault.RESET, at=2_500_000, times=2)
    )

    result = proxied.once("--slice-size", "4M", "--slice-threshold", "0")

    assert result.returncode == 0, result.stderr
    assert reset.fired == 2
    assert proxied.version("m/1") == files
    # A resumed range starts where the reset cut it (at a whole read), not at its slice's start.
    starts = [
        int(m[1]) for r in proxy.records if (m := re.match(r"bytes=(\d+)-", r.range_header or ""))
    ]
    assert any(s % (4 * MiB) for s in starts)


def test_network_down_for_a_pass_then_next_pass_resumes(proxied: Sync, proxy: FaultProxy) -> None:
    files = big_version("n")
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    proxy.add_rule(Rule(kind="download", ranged=True, fault=Fault.STATUS, status=503, skip=4))

    failed = proxied.once(*SLICED, "--connections", "2", "--retry-attempts", "2")

    assert failed.returncode == 1
    assert "HTTP 503" in failed.stderr
    assert proxied.versions("m") == []
    on_disk = recorded_bytes(proxied)
    assert on_disk >= 2 * MiB
    proxy.clear_rules()
    proxy.reset_counts()

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/1") == files
    assert ranged_bytes(proxy.records, proxied.key(f"m/1/{BIG}"), 8 * MiB) <= 8 * MiB - on_disk


def test_new_generation_discards_the_partial_of_the_old_one(proxied: Sync) -> None:
    proxied.bucket.put_folder(proxied.key("m/1"), big_version("old"))
    interrupt(proxied, signal.SIGTERM, 2 * MiB)
    old_partials = set(partial_dir(proxied).iterdir())
    assert old_partials
    new = big_version("new")
    proxied.bucket.put_folder(proxied.key("m/1"), new)

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/1") == new
    assert "resuming" not in result.stderr
    assert list(partial_dir(proxied).iterdir()) == []


def test_version_deleted_from_the_bucket_removes_its_partial(proxied: Sync) -> None:
    proxied.bucket.put_folder(proxied.key("m/1"), big_version("gone"))
    proxied.bucket.put_zip(proxied.key("m/2.zip"), sample_files("2"))
    interrupt(proxied, signal.SIGTERM, 2 * MiB)
    assert list(partial_dir(proxied).iterdir())
    proxied.bucket.delete_prefix(proxied.key("m/1/"))

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert proxied.versions("m") == ["2"]
    assert list(partial_dir(proxied).iterdir()) == []


def test_damaged_partial_is_checked_on_resume_and_read_again(proxied: Sync) -> None:
    files = big_version("d")
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    interrupt(proxied, signal.SIGTERM, 3 * MiB)
    (data,) = (p for p in partial_dir(proxied).iterdir() if p.suffix != ".json")
    with open(data, "r+b") as f:  # a bit flipped on disk in a range recorded as done
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 1]))

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert "do not match what was recorded" in result.stderr
    assert proxied.version("m/1") == files


def test_range_ignoring_proxy_still_yields_the_exact_bytes(
    proxied: Sync, proxy: FaultProxy
) -> None:
    files = big_version("i", 4 * MiB)
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    ignore = proxy.add_rule(Rule(kind="download", ranged=True, fault=Fault.IGNORE_RANGE, times=2))

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert ignore.fired == 2
    assert proxied.version("m/1") == files


def test_bwlimit_caps_the_total_rate_over_every_slice(sync: Sync) -> None:
    files = big_version("b", 6 * MiB)
    sync.bucket.put_folder(sync.key("m/1"), files)

    started = time.monotonic()
    result = sync.once(*SLICED, "--connections", "6", "--bwlimit", "2M")
    took = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == files
    # 6 MiB at 2 MiB/s over six connections: never under 3 s, whatever the machine.
    assert took >= 2.9


def test_a_version_held_back_by_a_clash_keeps_its_partial_download_for_later(
    proxied: Sync, proxy: FaultProxy
) -> None:
    """A version kept back for a pass (its number is spelled two ways on this node) is not
    dropped from the plan: what it already downloaded stays, and is resumed once it may go on."""
    files = big_version("h")
    proxied.bucket.put_folder(proxied.key("m/1"), files)
    interrupt(proxied, signal.SIGTERM, 3 * MiB)
    on_disk = recorded_bytes(proxied)
    proxied.bucket.put_zip(proxied.key("m/2.zip"), sample_files("2"))
    clash = proxied.dest / "m" / "02"  # hand-made, beside the bucket's 2: m is held back
    clash.mkdir(parents=True)

    held = proxied.once(*SLICED)

    assert held.returncode == 1, held.stderr
    assert recorded_bytes(proxied) >= on_disk
    clash.rmdir()
    proxy.reset_counts()

    result = proxied.once(*SLICED)

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/1") == files
    assert proxied.versions("m") == ["1", "2"]
    assert ranged_bytes(proxy.records, proxied.key(f"m/1/{BIG}"), 8 * MiB) <= 8 * MiB - on_disk
