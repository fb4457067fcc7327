"""Checks of the harness's own pure parts: `python -m pytest bench` (not part of `make test`)."""

from __future__ import annotations

import http.client
import http.server
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.data import FileSpec, generate, sha256_file
from bench.emulator import classify, count_requests
from bench.shaped import LinkStats, RequestTracker, ShapedLink, TokenBucket, parse_rate
from bench.verify import check_tree, compare, hash_tree

MiB = 1 << 20


@pytest.mark.parametrize(
    ("method", "target", "kind"),
    [
        ("GET", "/storage/v1/b/bk/o?alt=json&prefix=bench%2F&delimiter=%2F", "list"),
        ("GET", "/storage/v1/b/bk/o", "list"),
        ("GET", "/storage/v1/b/bk/o/bench%2Fm%2F0001.zip?alt=json", "metadata"),
        ("GET", "/storage/v1/b/bk/o/bench%2Fm%2F0001.zip?alt=media", "read"),
        ("GET", "/download/storage/v1/b/bk/o/bench%2Fm%2F0001.zip?alt=media", "read"),
        ("GET", "/bk/bench/m/0001.zip", "read"),
        ("GET", "/storage/v1/b/bk?projection=noAcl", "other"),
        ("POST", "/upload/storage/v1/b/bk/o?uploadType=multipart", "other"),
    ],
)
def test_classify(method: str, target: str, kind: str) -> None:
    assert classify(method, target) == kind


def test_count_requests_reads_the_access_log_lines() -> None:
    lines = [
        'time=x level=INFO msg="server started at http://127.0.0.1:1"',
        'time=x level=INFO msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] '
        '\\"GET /storage/v1/b/bk/o?prefix=p%2F HTTP/1.1\\" 200 1572\\n"',
        'time=x level=INFO msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] '
        '\\"GET /download/storage/v1/b/bk/o/p%2Fa?alt=media HTTP/1.1\\" 206 0\\n"',
        'time=x level=INFO msg="127.0.0.1 - - [22/Nov/2026:19:53:10 +0000] '
        '\\"GET /storage/v1/b/bk/o/p?alt=json HTTP/1.1\\" 404 119\\n"',
    ]
    counts = count_requests(lines)
    assert (counts.list, counts.metadata, counts.read, counts.other) == (1, 1, 1, 0)
    assert counts.errors == 1
    assert counts.total == 3


def test_compare_reports_each_kind_of_difference() -> None:
    problems = compare({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "X", "d": "4"})
    assert problems == ["1 missing: c", "1 unexpected: d", "1 differs: b"]
    assert compare({"a": "1"}, {"a": "1"}) == []


def test_hash_tree_skips_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "m" / "0001").mkdir(parents=True)
    (tmp_path / "m" / "0001" / "saved_model.pb").write_bytes(b"x")
    (tmp_path / ".state").mkdir()
    (tmp_path / ".state" / "manifest").write_bytes(b"y")
    (tmp_path / "m" / ".staging-0002").write_bytes(b"z")
    assert list(hash_tree(tmp_path)) == ["m/0001/saved_model.pb"]


@pytest.mark.parametrize("form", ["zip", "tgz", "folder"])
def test_generated_versions_extract_to_the_published_sums(tmp_path: Path, form: str) -> None:
    files = [FileSpec("saved_model.pb", 10), FileSpec("variables/variables.data", 5 << 20)]
    ds = generate(tmp_path / "data", "bk", "bench", form, 2, 2, files)  # type: ignore[arg-type]
    base = tmp_path / "data" / "bk" / "bench"
    assert ds.versions == 4
    assert ds.payload_bytes == 4 * (10 + (5 << 20))
    assert {k: sha256_file(base / k) for k in ds.objects} == ds.objects
    if form == "folder":
        assert check_tree(base, ds.published) == []
        return
    out = tmp_path / "out"
    for key in ds.objects:
        model_dir = out / key.split("/")[0]
        if form == "zip":
            with zipfile.ZipFile(base / key) as zf:
                assert zf.testzip() is None
                zf.extractall(model_dir)  # noqa: S202  # archives we just made
        else:
            with tarfile.open(base / key) as tf:
                tf.extractall(model_dir, filter="data")
    assert check_tree(out, ds.published) == []
    assert sorted(ds.published)[0] == "model0/0001/saved_model.pb"


@pytest.mark.parametrize(
    ("text", "rate"),
    [("40M", 40 * MiB), ("40MiB/s", 40 * MiB), ("512k", 512 << 10), ("1.5G", 1.5 * (1 << 30)),
     ("1000", 1000), ("0", 0)],
)  # fmt: skip
def test_parse_rate(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


def test_parse_rate_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        parse_rate("fast")


def test_token_bucket_spends_its_burst_then_makes_the_reader_wait() -> None:
    bucket = TokenBucket(rate=1000, burst=500, now=0.0)
    assert bucket.take(300, now=0.0) == 0.0  # within the burst
    assert bucket.take(700, now=0.0) == pytest.approx(0.5)  # 500 bytes of debt at 1000 B/s
    assert bucket.take(100, now=0.5) == pytest.approx(0.1)  # the debt was paid, nothing saved
    assert bucket.take(100, now=10.0) == 0.0  # credit refilled, capped at the burst
    assert bucket.tokens == pytest.approx(400)


def test_token_bucket_holds_the_rate_over_many_reads() -> None:
    rate, now, read = 40 * MiB, 0.0, 256 << 10
    bucket = TokenBucket(rate, burst=read, now=now)
    for _ in range(400):  # 100 MiB, each read waiting as the proxy does
        now += bucket.take(read, now)
    assert now == pytest.approx((400 * read - read) / rate)  # the first read rode the burst


def test_token_bucket_with_no_rate_never_waits() -> None:
    bucket = TokenBucket(rate=0, burst=0, now=0.0)
    assert bucket.take(1 << 30, now=0.0) == 0.0


def test_request_tracker_counts_a_request_per_exchange() -> None:
    tracker = RequestTracker()
    assert tracker.client_data()  # the first request line
    assert not tracker.client_data()  # more of the same request (headers, body)
    tracker.server_data()
    tracker.server_data()  # the response, in several reads
    assert tracker.client_data()  # the next request on the kept-alive connection
    assert not tracker.client_data()


def test_link_stats_since() -> None:
    assert LinkStats(5, 9, 100, 10).since(LinkStats(2, 4, 40, 10)) == LinkStats(3, 5, 60, 0)


BODY = bytes(range(256)) * (8 << 10)  # 2 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: several requests on one connection

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_shaped_link_caps_the_rate_delays_requests_and_counts(upstream: str) -> None:
    with ShapedLink(upstream, rate=32 * MiB, delay=0.05, burst=256 << 10) as link:
        port = int(link.url.rsplit(":", 1)[1])
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):  # two requests on one connection
            conn.request("GET", "/a")
            assert conn.getresponse().read() == BODY
        conn.close()
        elapsed = time.perf_counter() - start
        other = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        other.request("GET", "/b")
        assert other.getresponse().read() == BODY
        other.close()
        stats = link.stats()
        assert (link.connections, link.requests) == (2, 3)  # the same figures, one at a time
    # 2 x 50 ms of delay, 2 x 2 MiB at 32 MiB/s less the burst: at least 0.2 s
    assert elapsed >= 0.2
    assert elapsed < 5
    assert (stats.connections, stats.requests) == (2, 3)
    assert stats.bytes_down >= 3 * len(BODY)


def test_the_link_floor_is_the_bytes_over_every_connection_plus_one_delay() -> None:
    from bench.floors import link_floor
    from bench.workloads import LinkOptions

    link = LinkOptions(rate=40 * MiB, delay=0.03, burst=256 * 1024)
    assert link_floor(1024 * MiB, 16, link) == pytest.approx(1.6 + 0.03)
    assert link_floor(1024 * MiB, 1, link) == pytest.approx(25.6 + 0.03)
    assert link_floor(1024 * MiB, 16, link._replace(rate=0)) is None


def test_the_durable_write_floor_writes_syncs_and_removes_its_file(tmp_path: Path) -> None:
    from bench.floors import durable_write_floor

    seconds = durable_write_floor(tmp_path / "floor", 3 * MiB + 5, runs=2)
    assert 0 < seconds < 60
    assert list((tmp_path / "floor").iterdir()) == []


def test_the_w5_line_sets_ours_against_the_larger_floor_and_a_durable_gcloud() -> None:
    from bench.emulator import RequestCounts
    from bench.floors import verdict
    from bench.report import Summary
    from bench.workloads import CaseResult, LinkOptions, LinkUse

    counts = RequestCounts(*([0] * len(RequestCounts._fields)))

    def summary(tool: str, median: float) -> Summary:
        return Summary(tool, 3, 3, median, median, median, 1.0, 0, counts,
                       LinkUse(16, 20, 1024 * MiB, 0.5))  # fmt: skip

    class Data:
        payload_bytes = 1024 * MiB

    class Spec:
        id = "W5-big"

    link = LinkOptions(rate=40 * MiB, delay=0.03, burst=256 * 1024)
    result = CaseResult(Spec(), Data(), {}, {}, [], "memory", link)  # type: ignore[arg-type]
    sums = {"ours": summary("ours", 3.26), "gcloud-cp-durable": summary("gcloud", 6.52)}
    line = verdict(result, sums, durable=0.8)
    assert "durable write 0.80 s, link 1.63 s (16 connections x 40 MiB/s + 30 ms)" in line
    assert "ours 3.26 s = 2.00x max(floors), 0.50x durable gcloud (6.52 s)" in line
