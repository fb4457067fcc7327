"""The fault proxy against the real emulator: pass-through, counting, and each fault."""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import quote

import pytest
import requests

from tests.support.emulator import Emulator, free_port
from tests.support.faultproxy import Fault, FaultProxy, Record, Rule, classify
from tests.support.gcs import Bucket, client


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[FaultProxy]:
    with FaultProxy(emulator.url, seed=7) as p:
        yield p


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def list_url(proxy: FaultProxy, bucket: Bucket, query: str = "prefix=") -> str:
    return f"{proxy.url}/storage/v1/b/{bucket.name}/o?{query}"


def download_url(base: str, bucket: Bucket, key: str) -> str:
    return f"{base}/download/storage/v1/b/{bucket.name}/o/{quote(key, safe='')}?alt=media"


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def raw_get(proxy: FaultProxy, url: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", url.removeprefix(proxy.url))
    return conn.getresponse()


# classification


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/storage/v1/b/bkt/o?prefix=m/", ("list", "bkt", None)),
        ("GET", "/storage/v1/b/bkt/o/", ("list", "bkt", None)),
        ("GET", "/storage/v1/b/bkt/o/m%2Fv1.zip?alt=media", ("download", "bkt", "m/v1.zip")),
        ("GET", "/download/storage/v1/b/bkt/o/a%20b?alt=media", ("download", "bkt", "a b")),
        ("GET", "/storage/v1/b/bkt/o/m%2Fv1.zip", ("metadata", "bkt", "m/v1.zip")),
        ("POST", "/upload/storage/v1/b/bkt/o?uploadType=multipart", ("upload", "bkt", None)),
        ("PUT", "/upload/storage/v1/b/bkt/o?upload_id=1&name=m%2F1", ("upload", "bkt", "m/1")),
        ("PUT", "/upload/resumable/abc", ("upload", None, None)),
        ("DELETE", "/storage/v1/b/bkt/o/k", ("other", "bkt", "k")),
        ("GET", "/storage/v1/b/bkt", ("other", None, None)),
        ("GET", "/storage/v1/b", ("other", None, None)),
        ("POST", "/storage/v1/b?project=test", ("other", None, None)),
    ],
)
def test_classify(method: str, target: str, expected: tuple[str, str | None, str | None]) -> None:
    path, _, query = target.partition("?")
    assert classify(method, path, query) == expected


def test_rule_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        Rule(kind="lsit", fault=Fault.STATUS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="callback"):
        Rule(fault=Fault.CALLBACK)
    with pytest.raises(ValueError, match="probability"):
        Rule(fault=Fault.RESET, probability=1.5)


# pass-through


def test_download_is_byte_exact_with_headers_and_ranges(
    proxy: FaultProxy, bucket: Bucket, emulator: Emulator, session: requests.Session
) -> None:
    data = payload(5 * 1024 * 1024 + 17)
    generation = bucket.put("models/m/1/model.bin", data)

    direct = session.get(download_url(emulator.url, bucket, "models/m/1/model.bin"))
    resp = session.get(download_url(proxy.url, bucket, "models/m/1/model.bin"))
    assert resp.status_code == 200
    assert resp.content == data
    for header in ("Content-Length", "X-Goog-Hash", "X-Goog-Generation", "Etag"):
        assert resp.headers[header] == direct.headers[header]
    assert resp.headers["X-Goog-Generation"] == str(generation)

    ranged = session.get(
        download_url(proxy.url, bucket, "models/m/1/model.bin"),
        headers={"Range": "bytes=4194300-4194399"},
    )
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes 4194300-4194399/{len(data)}"
    assert ranged.content == data[4194300:4194400]

    tail = session.get(
        download_url(proxy.url, bucket, "models/m/1/model.bin"), headers={"Range": "bytes=-10"}
    )
    assert tail.status_code == 206
    assert tail.content == data[-10:]
    assert proxy.counts["download"] == 3


def test_listing_links_point_back_at_the_proxy(
    proxy: FaultProxy, bucket: Bucket, emulator: Emulator, session: requests.Session
) -> None:
    bucket.put("a", b"alpha")
    item = session.get(list_url(proxy, bucket)).json()["items"][0]
    assert item["mediaLink"].startswith(proxy.url + "/")
    assert emulator.url not in json.dumps(item)
    assert session.get(item["mediaLink"]).content == b"alpha"
    assert proxy.counts["download"] == 1


def test_chunked_request_body_is_forwarded(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    parts = [b"x" * 70_000, b"y" * 10, b"z" * 3]
    resp = session.post(
        f"{proxy.url}/upload/storage/v1/b/{bucket.name}/o?uploadType=media&name=chunked",
        data=iter(parts),  # a generator body goes out chunked
    )
    assert resp.status_code == 200, resp.text
    assert session.get(download_url(proxy.url, bucket, "chunked")).content == b"".join(parts)
    assert proxy.counts["upload"] == 1


def test_status_fault_drains_the_request_body(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    proxy.add_rule(Rule(kind="upload", fault=Fault.STATUS, status=503, times=1))
    url = f"{proxy.url}/upload/storage/v1/b/{bucket.name}/o?uploadType=media&name=k"
    body = payload(300_000)
    assert session.post(url, data=body).status_code == 503
    assert session.post(url, data=body).status_code == 200  # the connection is still usable
    assert bucket.object_names() == ["k"]
    assert [(r.name, r.status) for r in proxy.records] == [("k", 503), ("k", 200)]


def test_counts_and_records_by_kind(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    bucket.put("m/v1.zip", b"zip")
    session.get(list_url(proxy, bucket, "prefix=m/"))
    session.get(download_url(proxy.url, bucket, "m/v1.zip"))
    session.get(f"{proxy.url}/storage/v1/b/{bucket.name}/o/m%2Fv1.zip?alt=media")
    session.get(f"{proxy.url}/storage/v1/b/{bucket.name}/o/m%2Fv1.zip")
    session.get(f"{proxy.url}/storage/v1/b/{bucket.name}")
    session.head(download_url(proxy.url, bucket, "m/v1.zip"))

    assert proxy.counts == {"list": 1, "download": 3, "metadata": 1, "other": 1}
    first = proxy.records[0]
    assert (first.method, first.path, first.query, first.kind, first.status) == (
        "GET",
        f"/storage/v1/b/{bucket.name}/o",
        "prefix=m/",
        "list",
        200,
    )
    assert first.params == {"prefix": "m/"}
    assert [r.name for r in proxy.records if r.kind == "download"] == ["m/v1.zip"] * 3
    assert all(r.fault is None for r in proxy.records)

    proxy.reset_counts()
    assert proxy.counts == {}
    assert proxy.records == []


def test_unreachable_upstream_answers_502(session: requests.Session) -> None:
    with FaultProxy(f"http://127.0.0.1:{free_port()}") as dead:
        resp = session.get(f"{dead.url}/storage/v1/b/x/o")
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == 502


# faults


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, "rateLimitExceeded"),
        (500, "backendError"),
        (503, "backendError"),
        (401, "authError"),
        (403, "forbidden"),
        (404, "notFound"),
    ],
)
def test_status_fault_answers_a_gcs_error(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session, status: int, reason: str
) -> None:
    rule = proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=status, times=1))
    resp = session.get(list_url(proxy, bucket))
    assert resp.status_code == status
    assert resp.headers["Content-Type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == status
    assert error["errors"][0]["reason"] == reason
    assert error["message"]
    if status == 403:
        assert "does not have storage.objects.list access" in error["message"]
        assert "Google Cloud Storage bucket." in error["message"]
    assert session.get(list_url(proxy, bucket)).status_code == 200  # same keep-alive session
    assert (rule.matched, rule.fired) == (2, 1)
    assert [r.status for r in proxy.records] == [status, 200]
    assert proxy.records[0].fault is Fault.STATUS


def test_status_fault_message_can_be_overridden(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    proxy.add_rule(Rule(fault=Fault.STATUS, status=403, message="nope", reason="forbidden"))
    error = session.get(list_url(proxy, bucket)).json()["error"]
    assert (error["message"], error["errors"][0]["reason"]) == ("nope", "forbidden")


def test_reset_breaks_the_body_read(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    data = payload(256 * 1024)
    bucket.put("m.bin", data)
    proxy.add_rule(Rule(kind="download", fault=Fault.RESET, times=1))
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="reset"):
        session.get(download_url(proxy.url, bucket, "m.bin"))
    assert session.get(download_url(proxy.url, bucket, "m.bin")).content == data


def test_reset_delivers_at_bytes_even_to_a_slow_reader(proxy: FaultProxy, bucket: Bucket) -> None:
    """An RST discards what the sender has not yet sent: the proxy lets the client's kernel
    take all `at` bytes first, so a client that reads late still gets them and can resume."""
    data = payload(5 * 1024 * 1024)
    bucket.put("m.bin", data)
    proxy.add_rule(Rule(kind="download", fault=Fault.RESET, at=3 * 1024 * 1024))
    resp = raw_get(proxy, download_url(proxy.url, bucket, "m.bin"))
    time.sleep(0.5)  # the body is written meanwhile, and the reset sent
    got = bytearray()

    def read_all() -> None:
        while chunk := resp.read(64 * 1024):
            got.extend(chunk)

    with pytest.raises(ConnectionResetError):
        read_all()
    assert got == data[: 3 * 1024 * 1024]


def test_reset_before_any_body_byte(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    bucket.put("m.bin", payload(1000))
    proxy.add_rule(Rule(kind="download", fault=Fault.RESET, at=0))
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        session.get(download_url(proxy.url, bucket, "m.bin"))


def test_truncate_sends_fewer_bytes_than_promised(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    data = payload(100_000)
    bucket.put("m.bin", data)
    proxy.add_rule(Rule(kind="download", fault=Fault.TRUNCATE, at=1234, times=1))
    resp = raw_get(proxy, download_url(proxy.url, bucket, "m.bin"))
    assert resp.getheader("Content-Length") == str(len(data))
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert info.value.partial == data[:1234]

    proxy.add_rule(Rule(kind="download", fault=Fault.TRUNCATE, times=1))  # default: half
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        session.get(download_url(proxy.url, bucket, "m.bin"))


def test_flip_corrupts_content_but_not_length_or_headers(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    data = payload(200_000)
    bucket.put("m.bin", data)
    clean = session.get(download_url(proxy.url, bucket, "m.bin"))
    proxy.add_rule(Rule(kind="download", fault=Fault.FLIP, at=65_530, nbytes=10, times=1))
    bad = session.get(download_url(proxy.url, bucket, "m.bin"))
    assert bad.status_code == 200
    assert len(bad.content) == len(data)
    assert [i for i in range(len(data)) if bad.content[i] != data[i]] == list(
        range(65_530, 65_540)
    )  # spans a 64 KiB chunk boundary
    assert bad.headers["X-Goog-Hash"] == clean.headers["X-Goog-Hash"]
    assert session.get(download_url(proxy.url, bucket, "m.bin")).content == data


def test_ignore_range_answers_200_with_the_whole_body(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    """What a proxy or cache that ignores ranges does to a resumed download; `ranged` picks
    requests by whether they carry a Range, and each record keeps the Range it was sent."""
    data = payload(100_000)
    bucket.put("m.bin", data)
    url = download_url(proxy.url, bucket, "m.bin")
    rule = proxy.add_rule(Rule(kind="download", ranged=True, fault=Fault.IGNORE_RANGE, times=1))

    whole = session.get(url)  # no Range: the rule does not match
    ignored = session.get(url, headers={"Range": "bytes=1000-"})
    honoured = session.get(url, headers={"Range": "bytes=1000-"})

    assert whole.content == data
    assert ignored.status_code == 200
    assert ignored.content == data
    assert "Content-Range" not in ignored.headers
    assert honoured.status_code == 206
    assert honoured.content == data[1000:]
    assert (rule.matched, rule.fired) == (2, 1)
    assert [(r.range_header, r.status, r.fault) for r in proxy.records] == [
        (None, 200, None),
        ("bytes=1000-", 200, Fault.IGNORE_RANGE),
        ("bytes=1000-", 206, None),
    ]


def test_stall_times_the_client_out_and_stop_cuts_it_short(
    emulator: Emulator, bucket: Bucket, session: requests.Session
) -> None:
    proxy = FaultProxy(emulator.url).start()
    proxy.add_rule(Rule(kind="list", fault=Fault.STALL, delay=30))
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(list_url(proxy, bucket), timeout=0.5)

    stalled: list[BaseException] = []

    def client() -> None:
        try:
            requests.get(list_url(proxy, bucket), timeout=10)
        except requests.RequestException as exc:
            stalled.append(exc)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    deadline = time.monotonic() + 2
    while proxy.counts["list"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    proxy.stop()
    thread.join(2)
    assert time.monotonic() - started < 2
    assert not thread.is_alive()
    assert len(stalled) == 1


def test_stall_mid_body_then_completes(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    data = payload(150_000)
    bucket.put("m.bin", data)
    proxy.add_rule(Rule(kind="download", fault=Fault.STALL, at=70_000, delay=0.3, times=1))
    started = time.monotonic()
    resp = session.get(download_url(proxy.url, bucket, "m.bin"), timeout=5)
    assert resp.content == data
    assert time.monotonic() - started >= 0.3


def test_skip_and_times_fail_exactly_one_page(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    rule = proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=503, skip=2, times=1))
    statuses = [session.get(list_url(proxy, bucket)).status_code for _ in range(5)]
    assert statuses == [200, 200, 503, 200, 200]
    assert (rule.matched, rule.fired) == (5, 1)


def test_unlimited_rule_after_skip_stops_everything(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    proxy.add_rule(Rule(fault=Fault.STATUS, status=500, skip=3))
    statuses = [session.get(list_url(proxy, bucket)).status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 500, 500, 500]
    proxy.clear_rules()
    assert session.get(list_url(proxy, bucket)).status_code == 200


def test_probability_is_reproducible_with_a_seed(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    expected_rng = random.Random(42)
    expected = [503 if expected_rng.random() < 0.3 else 200 for _ in range(30)]
    rule = proxy.add_rule(Rule(fault=Fault.STATUS, status=503, probability=0.3))
    runs = []
    for _ in range(2):
        proxy.rng.seed(42)
        runs.append([session.get(list_url(proxy, bucket)).status_code for _ in range(30)])
    assert runs == [expected, expected]
    assert 0 < expected.count(503) < 30
    assert rule.fired == 2 * expected.count(503)


def test_match_on_path_and_query(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    bucket.put("models/a b/1.zip", b"one")
    bucket.put("models/c/1.zip", b"two")
    proxy.add_rule(Rule(kind="download", path="a b/", fault=Fault.STATUS, status=404))
    proxy.add_rule(
        Rule(kind="list", query=lambda q: "pageToken" in q, fault=Fault.STATUS, status=500)
    )
    assert session.get(download_url(proxy.url, bucket, "models/a b/1.zip")).status_code == 404
    assert session.get(download_url(proxy.url, bucket, "models/c/1.zip")).content == b"two"
    assert session.get(list_url(proxy, bucket)).status_code == 200
    assert session.get(list_url(proxy, bucket, "pageToken=abc")).status_code == 500


def test_first_fault_rule_wins_and_callbacks_still_run(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    seen: list[Record] = []
    first = proxy.add_rule(Rule(fault=Fault.STATUS, status=429, times=1))
    second = proxy.add_rule(Rule(fault=Fault.STATUS, status=500, times=1))
    proxy.add_rule(Rule(fault=Fault.CALLBACK, callback=seen.append))
    assert [session.get(list_url(proxy, bucket)).status_code for _ in range(3)] == [429, 500, 200]
    assert (first.matched, second.matched) == (3, 2)  # a fired rule hides the request
    assert len(seen) == 3


def test_callback_runs_before_forwarding(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    bucket.put("m/v1.zip", b"zip")
    calls: list[Record] = []

    def vanish(record: Record) -> None:
        calls.append(record)
        assert record.name is not None
        bucket.delete(record.name)  # the object disappears mid-sync

    proxy.add_rule(Rule(kind="download", fault=Fault.CALLBACK, callback=vanish, times=1))
    resp = session.get(download_url(proxy.url, bucket, "m/v1.zip"))
    assert resp.status_code == 404
    assert [(c.kind, c.name, c.status) for c in calls] == [("download", "m/v1.zip", 404)]
    assert proxy.errors == []


def test_google_client_lists_and_downloads_through_the_proxy(
    proxy: FaultProxy, bucket: Bucket
) -> None:
    names = [f"models/m/{i}/model.bin" for i in range(5)]
    for name in names:
        bucket.put(name, name.encode())
    gcs = client(proxy.url)  # api_endpoint=proxy.url, AnonymousCredentials, project "test"
    blobs = list(gcs.list_blobs(bucket.name, prefix="models/", page_size=2))
    assert [b.name for b in blobs] == names
    assert proxy.counts["list"] == 3
    assert blobs[0].download_as_bytes() == names[0].encode()
    assert proxy.counts["download"] == 1

    proxy.reset_counts()
    proxy.add_rule(Rule(kind="list", fault=Fault.STATUS, status=503, skip=2, times=1))
    assert [b.name for b in gcs.list_blobs(bucket.name, page_size=2)] == names  # retried
    assert [r.status for r in proxy.records] == [200, 200, 503, 200]


def test_clock_offset_shifts_date_and_json_times_together(
    proxy: FaultProxy, bucket: Bucket, session: requests.Session
) -> None:
    bucket.put("m/1/a", b"x")
    straight = session.get(list_url(proxy, bucket))
    proxy.clock_offset = -3600.0
    shifted = session.get(list_url(proxy, bucket))

    date = email.utils.parsedate_to_datetime
    gap = date(straight.headers["Date"]) - date(shifted.headers["Date"])
    assert 3599 <= gap.total_seconds() <= 3601
    [before], [after] = straight.json()["items"], shifted.json()["items"]
    for field in ("updated", "timeCreated"):
        moved = datetime.fromisoformat(before[field]) - datetime.fromisoformat(after[field])
        assert moved.total_seconds() == 3600
    assert after["generation"] == before["generation"]
