"""The core pass under faults: retries, checksums, permissions, signals and kill -9."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import Sync
from tests.support.faultproxy import Fault, FaultProxy, Rule
from tests.support.models import big_files, sample_files
from tests.support.probes import wait_for


def _read_tree(dir_fd: int, prefix: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for entry in os.scandir(dir_fd):
        if entry.is_dir(follow_symlinks=False):
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
            try:
                out.update(_read_tree(sub, f"{prefix}{entry.name}/"))
            finally:
                os.close(sub)
        else:
            f = os.open(entry.name, os.O_RDONLY, dir_fd=dir_fd)
            with os.fdopen(f, "rb") as fh:
                out[prefix + entry.name] = fh.read()
    return out


class Watcher:
    """Polls DEST like TF Serving does and records any numeric folder that is not complete."""

    def __init__(self, dest: Path, model: str, expected: Mapping[str, list[dict[str, bytes]]]):
        self.base = dest / model
        self.expected = expected  # version -> acceptable contents (old and new)
        self.bad: list[str] = []
        self.looks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                names = [p.name for p in self.base.iterdir() if p.name.isdigit()]
            except FileNotFoundError:
                names = []
            for name in names:
                self._check(name)
            self.looks += 1

    def _check(self, name: str) -> None:
        """Read one version through a directory fd, so a swap mid-read cannot mix trees."""
        root = self.base / name
        try:
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            inode = os.fstat(fd).st_ino
            seen = _read_tree(fd, "")
            if os.stat(root).st_ino != inode:
                return  # replaced while we read: what we read was the retired tree
        except (FileNotFoundError, NotADirectoryError):
            return  # retired and being removed while we read
        finally:
            os.close(fd)
        if seen not in self.expected.get(name, []):
            self.bad.append(f"{name}: {sorted(seen)}")

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def test_transient_errors_on_every_request_kind_are_retried(
    proxied: Sync, proxy: FaultProxy
) -> None:
    for v in ("1", "2", "3"):
        proxied.bucket.put_zip(proxied.key(f"m/{v}.zip"), sample_files(v))
    proxied.bucket.put_folder(proxied.key("f/4"), sample_files("4"))
    proxy.add_rule(Rule(fault=Fault.STATUS, status=503, probability=0.3))
    proxy.add_rule(Rule(kind="download", fault=Fault.RESET, at=20, probability=0.2))

    # One connection: requests reach the proxy in one order, so its seeded draws are the same
    # every run (side by side, which request draws which fault varies, and now and then one
    # object draws a fault on each of its --retry-attempts tries).
    result = proxied.once("--workers", "1", "--connections", "1")

    assert result.returncode == 0, result.stderr
    for v in ("1", "2", "3"):
        assert proxied.version(f"m/{v}") == sample_files(v)
    assert proxied.version("f/4") == sample_files("4")
    assert sum(r.fired for r in proxy.rules) > 0


def test_corrupted_download_is_retried_and_never_published(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_tar(proxied.key("m/1.tar"), sample_files("a"))
    proxied.bucket.put_zip(proxied.key("m/2.zip"), sample_files("b"))
    flip = proxy.add_rule(Rule(kind="download", fault=Fault.FLIP, at=30, times=2))

    result = proxied.once()

    assert result.returncode == 0, result.stderr
    assert flip.fired == 2
    assert proxied.version("m/1") == sample_files("a")
    assert proxied.version("m/2") == sample_files("b")


def test_always_corrupted_download_fails_that_version_only(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxied.bucket.put_zip(proxied.key("m/2.zip"), sample_files("b"))
    proxy.add_rule(Rule(kind="download", path="m/2.zip", fault=Fault.FLIP, at=10))

    result = proxied.once("--retry-attempts", "3")

    assert result.returncode == 1
    assert proxied.versions("m") == ["1"]
    assert "m/2.zip: crc32c mismatch" in result.stderr


def test_permission_denied_fails_fast_naming_bucket_and_permission(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=403))
    started = time.monotonic()

    result = proxied.once()

    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert f"storage.objects.list denied on bucket gs://{proxied.bucket.name}" in result.stderr
    assert proxy.counts["list"] == 1
    assert "Traceback" not in result.stderr


def test_listing_that_fails_on_page_3_of_5_prunes_nothing(proxied: Sync, proxy: FaultProxy) -> None:
    for v in range(1, 11):
        proxied.bucket.put_zip(proxied.key(f"m/{v}.zip"), sample_files(str(v)))
    assert proxied.once("--list-page-size", "2").returncode == 0
    proxied.bucket.delete(proxied.key("m/1.zip"))
    proxied.bucket.delete(proxied.key("m/10.zip"))  # 8 objects: pages 1-4 of 2, and page 5
    proxied.bucket.put_zip(proxied.key("m/11.zip"), sample_files("11"))
    proxy.reset_counts()
    proxy.add_rule(Rule(kind="list", skip=2, fault=Fault.STATUS, status=500))

    result = proxied.once("--retry-attempts", "2", "--list-page-size", "2")

    assert result.returncode == 1
    assert sorted(proxied.versions("m"), key=int) == [str(v) for v in range(1, 11)]
    assert proxy.counts["list"] == 4  # pages 1 and 2, then page 3 twice
    assert proxy.counts["download"] == 0


def test_failed_download_skips_every_prune(proxied: Sync, proxy: FaultProxy) -> None:
    proxied.bucket.put_zip(proxied.key("a/1.zip"), sample_files("a"))
    proxied.bucket.put_zip(proxied.key("b/1.zip"), sample_files("b"))
    assert proxied.once().returncode == 0
    proxied.bucket.delete(proxied.key("b/1.zip"))
    proxied.bucket.put_zip(proxied.key("a/2.zip"), sample_files("a2"))
    proxy.add_rule(Rule(kind="download", fault=Fault.STATUS, status=503))

    result = proxied.once("--retry-attempts", "2")

    assert result.returncode == 1
    assert proxied.versions("b") == ["1"]
    assert "not deleting 1 version(s)" in result.stderr


def test_sigterm_during_download_exits_quickly_without_partial_version(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), big_files("a"))
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=100_000, delay=60))
    proc = proxied.start("once")
    wait_for(lambda: proxy.counts["download"] > 0, what="download start")
    time.sleep(0.3)

    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    proc.wait(timeout=15)

    assert time.monotonic() - started < 5
    assert proc.returncode == 128 + signal.SIGTERM
    assert proxied.versions("m") == []
    assert proc.stderr is not None
    assert "interrupted by signal 15" in proc.stderr.read()


def test_kill_during_sync_then_rerun_converges(proxied: Sync, proxy: FaultProxy) -> None:
    versions = {str(v): big_files(str(v)) for v in range(1, 7)}
    for v, files in versions.items():
        form = int(v) % 3
        if form == 0:
            proxied.bucket.put_zip(proxied.key(f"m/{v}.zip"), files, top=v)
        elif form == 1:
            proxied.bucket.put_tar(proxied.key(f"m/{v}.tar.gz"), files, gz=True)
        else:
            proxied.bucket.put_folder(proxied.key(f"m/{v}"), files)
    # slow every download a little so kills land in the middle of things
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=65536, delay=0.15))
    expected = {v: [f] for v, f in versions.items()}
    rng = random.Random(7)
    with Watcher(proxied.dest, "m", expected).running() as watcher:
        for _ in range(5):
            proc = proxied.start("once", "--workers", "3")
            time.sleep(rng.uniform(0.3, 1.5))
            proc.kill()
            proc.wait()
        proxy.clear_rules()
        final = proxied.once()
    assert final.returncode == 0, final.stderr
    assert watcher.bad == []
    assert watcher.looks > 10
    for v, files in versions.items():
        assert proxied.version(f"m/{v}") == files
    assert list((proxied.dest / ".gcs-model-sync" / "staging").iterdir()) == []


def test_kill_during_replace_then_rerun_converges(proxied: Sync, proxy: FaultProxy) -> None:
    old = {str(v): big_files(f"old{v}", 1024 * 1024) for v in range(1, 5)}
    new = {str(v): big_files(f"new{v}", 1024 * 1024) for v in range(1, 5)}
    for v, files in old.items():
        proxied.bucket.put_zip(proxied.key(f"m/{v}.zip"), files)
    assert proxied.once().returncode == 0
    for v, files in new.items():
        proxied.bucket.put_zip(proxied.key(f"m/{v}.zip"), files)
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=65536, delay=0.2))
    expected = {v: [old[v], new[v]] for v in old}
    rng = random.Random(11)
    with Watcher(proxied.dest, "m", expected).running() as watcher:
        for _ in range(4):
            proc = proxied.start("once", "--workers", "2")
            time.sleep(rng.uniform(0.3, 1.2))
            proc.kill()
            proc.wait()
        proxy.clear_rules()
        final = proxied.once()
    assert final.returncode == 0, final.stderr
    assert watcher.bad == []
    for v, files in new.items():
        assert proxied.version(f"m/{v}") == files


def test_stalled_requests_time_out_and_the_pass_still_finishes(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxied.bucket.put_tar(proxied.key("m/2.tar"), sample_files("b"))
    proxy.add_rule(Rule(kind="list", fault=Fault.STALL, delay=30, times=1))
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=40, delay=30, times=2))
    started = time.monotonic()

    result = proxied.once("--request-timeout", "1")

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 25
    assert proxied.version("m/1") == sample_files("a")
    assert proxied.version("m/2") == sample_files("b")


def test_object_replaced_mid_download_is_never_published_mixed(
    proxied: Sync, proxy: FaultProxy
) -> None:
    old, new = big_files("old", 256 * 1024), big_files("new", 256 * 1024)
    proxied.bucket.put_folder(proxied.key("m/1"), old)
    proxied.bucket.put_zip(proxied.key("m/2.zip"), old)

    def replace_everything(_record: object) -> None:
        proxied.bucket.put_folder(proxied.key("m/1"), new)
        proxied.bucket.put_zip(proxied.key("m/2.zip"), new)

    proxy.add_rule(
        Rule(kind="download", fault=Fault.CALLBACK, skip=1, times=1, callback=replace_everything)
    )
    first = proxied.once()

    for v in proxied.versions("m"):
        assert proxied.version(f"m/{v}") in (old, new), f"m/{v} is a mix"
    assert first.returncode == 1
    assert "changed or deleted mid-pass" in first.stderr
    second = proxied.once()
    assert second.returncode == 0, second.stderr
    assert proxied.version("m/1") == new
    assert proxied.version("m/2") == new


@pytest.mark.parametrize("nth", [1, 2, 4, 7])
def test_kill_after_the_nth_download_request_then_rerun_converges(
    proxied: Sync, proxy: FaultProxy, nth: int
) -> None:
    versions = {str(v): big_files(f"d{v}", 512 * 1024) for v in range(1, 5)}
    for v, files in versions.items():
        if int(v) % 2:
            proxied.bucket.put_zip(proxied.key(f"m/{v}.zip"), files)
        else:
            proxied.bucket.put_folder(proxied.key(f"m/{v}"), files)
    proc = proxied.start("once", "--workers", "2")
    proxy.add_rule(
        Rule(
            kind="download",
            fault=Fault.CALLBACK,
            skip=nth - 1,
            times=1,
            callback=lambda _r: proc.kill(),
        )
    )
    proc.wait(timeout=60)
    for v in proxied.versions("m"):
        assert proxied.version(f"m/{v}") == versions[v]

    proxy.clear_rules()
    final = proxied.once()
    assert final.returncode == 0, final.stderr
    assert {v: proxied.version(f"m/{v}") for v in proxied.versions("m")} == versions


def test_kill_during_pruning_then_rerun_converges(proxied: Sync) -> None:
    many = {f"{v}": {f"shard-{i}": bytes([i]) * 2048 for i in range(60)} for v in range(1, 31)}
    for v, files in many.items():
        proxied.bucket.put_folder(proxied.key(f"m/{v}"), files)
    assert proxied.once("--workers", "8").returncode == 0
    proxied.bucket.delete_prefix(proxied.key("m/"))
    proxied.bucket.put_folder(proxied.key("m/99"), {"saved_model.pb": b"keep"})
    rng = random.Random(5)
    for _ in range(4):
        proc = proxied.start("once", "--allow-empty-source")
        time.sleep(rng.uniform(0.4, 1.0))
        proc.kill()
        proc.wait()
        for v in proxied.versions("m"):
            expected = {"saved_model.pb": b"keep"} if v == "99" else many[v]
            assert proxied.version(f"m/{v}") == expected, f"m/{v} half-deleted"

    final = proxied.once()
    assert final.returncode == 0, final.stderr
    assert proxied.versions("m") == ["99"]
    # retired trees wait one pass in the trash (a reader inside keeps a whole tree); the next
    # pass empties it
    assert proxied.once().returncode == 0
    assert list((proxied.dest / ".gcs-model-sync" / "trash").iterdir()) == []


def test_rejected_credentials_fail_fast_naming_the_bucket(proxied: Sync, proxy: FaultProxy) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=401))

    result = proxied.once()

    assert result.returncode == 1
    assert f"credentials rejected listing gs://{proxied.bucket.name}" in result.stderr
    assert proxy.counts["list"] == 1


def test_permission_denied_on_an_object_fails_that_version_fast(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put_zip(proxied.key("m/1.zip"), sample_files("a"))
    proxied.bucket.put_zip(proxied.key("m/2.zip"), sample_files("b"))
    proxy.add_rule(Rule(kind="download", path="m/2.zip", fault=Fault.STATUS, status=403))

    result = proxied.once()

    assert result.returncode == 1
    assert f"gs://{proxied.bucket.name}/models/m/2.zip: permission storage.objects.get denied" in (
        result.stderr
    )
    assert proxied.versions("m") == ["1"]
    assert sum(1 for r in proxy.records if r.name and r.name.endswith("m/2.zip")) == 1
