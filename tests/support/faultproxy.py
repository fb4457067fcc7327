"""A fault-injecting HTTP proxy that sits between a GCS client and the emulator.

Point STORAGE_EMULATOR_HOST (or `api_endpoint`) at `FaultProxy(emulator.url).url`. Every
request is forwarded and counted by kind; rules added at any time turn matching requests
into error statuses, connection resets, stalls, truncated or corrupted bodies, ignored
`Range` headers, or a callback.

Upstream links in JSON bodies (`mediaLink`, `selfLink`) and `Location` headers are rewritten
to the proxy, so a client that follows them stays behind the proxy.
"""

from __future__ import annotations

import contextlib
import email.utils
import enum
import http.client
import json
import random
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Literal, get_args
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.httpbody import (
    Abort,
    end_body,
    relayed_headers,
    response_body,
    send_head,
    send_request,
    write_body,
)
from tests.support.standin import ProxyHandler, StandInServer

__all__ = ["KINDS", "Fault", "FaultProxy", "Kind", "Record", "Rule", "classify"]

CHUNK = 64 * 1024

Kind = Literal["list", "download", "metadata", "upload", "other"]
KINDS: tuple[Kind, ...] = get_args(Kind)


class Fault(enum.Enum):
    STATUS = "status"  # answer `status` with a GCS-like JSON error; upstream never sees it
    RESET = "reset"  # headers and `at` body bytes, then a TCP RST
    STALL = "stall"  # sleep `delay` s before forwarding (or after `at` body bytes)
    TRUNCATE = "truncate"  # headers and `at` body bytes, then a clean close
    FLIP = "flip"  # invert `nbytes` body bytes from `at`; length and headers unchanged
    CALLBACK = "callback"  # call `callback(record)`, then forward normally
    IGNORE_RANGE = "ignore_range"  # drop `Range` upstream: 200 and the whole body, as a cache may


@dataclass(eq=False)
class Record:
    """One request seen by the proxy; `status` and `fault` are filled in as it is served."""

    method: str
    path: str
    query: str
    kind: Kind
    bucket: str | None = None
    name: str | None = None
    status: int | None = None
    fault: Fault | None = None
    range_header: str | None = None  # the request's `Range`, as the client sent it

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass(kw_only=True, eq=False)
class Rule:
    """When a request matches, maybe inject `fault`.

    Matching: `kind`, `method`, `path` (substring of the raw or decoded path), `query`
    (a predicate on the query parameters) and `ranged` (whether the request carries a
    `Range` header); None matches anything. Of the matching requests,
    the first `skip` pass untouched, then each fires with `probability` (drawn from the
    proxy's seeded RNG), at most `times` times (None: unlimited). `matched` and `fired`
    count what happened.

    Rules are tried in the order added. The first fault rule that fires decides; later fault
    rules do not see (or count) that request. CALLBACK rules see every request, and an
    exception raised by a callback lands in `FaultProxy.errors`. `at` is a body offset in
    bytes: by default half the body for RESET, TRUNCATE and FLIP, and for STALL "before
    forwarding".
    """

    fault: Fault
    kind: Kind | None = None
    method: str | None = None
    path: str | None = None
    query: Callable[[Mapping[str, str]], bool] | None = None
    ranged: bool | None = None
    skip: int = 0
    times: int | None = None
    probability: float = 1.0
    status: int = 503
    message: str | None = None
    reason: str | None = None
    delay: float = 5.0
    at: int | None = None
    nbytes: int = 1
    callback: Callable[[Record], object] | None = None
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {KINDS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.fault is Fault.CALLBACK and self.callback is None:
            raise ValueError("Fault.CALLBACK needs a callback")
        if self.fault is Fault.STATUS and not 400 <= self.status <= 599:
            raise ValueError("Fault.STATUS needs a 4xx or 5xx status")

    def matches(self, record: Record) -> bool:
        if self.kind is not None and record.kind != self.kind:
            return False
        if self.method is not None and record.method != self.method.upper():
            return False
        if self.path is not None and not (
            self.path in record.path or self.path in unquote(record.path)
        ):
            return False
        if self.ranged is not None and (record.range_header is not None) != self.ranged:
            return False
        return self.query is None or self.query(record.params)


def classify(method: str, path: str, query: str) -> tuple[Kind, str | None, str | None]:
    """(kind, bucket, object name) of a JSON-API request."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    prefix, _, rest = path.partition("/storage/v1/b/")
    bucket, _, objects = rest.partition("/")
    collection, _, quoted_name = objects.partition("/")
    if prefix not in ("", "/upload", "/download") or not bucket or collection != "o":
        return ("upload" if path.startswith("/upload/") else "other"), None, None
    bucket = unquote(bucket)
    name = unquote(quoted_name) if quoted_name else None
    if prefix == "/upload":
        return "upload", bucket, name or params.get("name")
    download = prefix == "/download"
    if download:
        return "download", bucket, name
    if method != "GET":
        return "other", bucket, name
    if name is None:
        return "list", bucket, None
    if params.get("alt") == "media":
        return "download", bucket, name
    return "metadata", bucket, name


_REASONS = {
    400: ("Invalid argument.", "invalid"),
    401: ("Invalid Credentials", "authError"),
    404: ("No such object.", "notFound"),
    409: ("Conflict.", "conflict"),
    412: ("At least one of the pre-conditions you specified did not hold.", "conditionNotMet"),
    429: (
        "The rate of change requests exceeds the rate limit. Please reduce the rate of requests.",
        "rateLimitExceeded",
    ),
    500: ("We encountered an internal error. Please try again.", "backendError"),
    503: ("We encountered an internal error. Please try again.", "backendError"),
}
_PERMISSIONS = {"list": "list", "upload": "create"}


def error_body(status: int, record: Record, rule: Rule | None = None) -> bytes:
    """A GCS-shaped JSON error for `record`."""
    if status == 403:
        permission = _PERMISSIONS.get(record.kind, "get")
        target = "bucket" if record.kind == "list" else "object"
        message, reason = (
            "fault-proxy@test.iam.gserviceaccount.com does not have"
            f" storage.objects.{permission} access to the Google Cloud Storage {target}.",
            "forbidden",
        )
    elif status == 404 and record.kind == "list":
        message, reason = "The specified bucket does not exist.", "notFound"
    else:
        message, reason = _REASONS.get(status, (_phrase(status), "backendError"))
    if rule is not None:
        message = rule.message or message
        reason = rule.reason or reason
    error = {
        "code": status,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
    }
    return json.dumps({"error": error}).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


class FaultProxy(StandInServer):
    """A threaded HTTP proxy on 127.0.0.1 in front of `upstream_url`, with fault rules."""

    def __init__(self, upstream_url: str, seed: int = 0, upstream_timeout: float = 30.0) -> None:
        super().__init__()
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        self.upstream_url = f"http://{parts.netloc}"
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_timeout = upstream_timeout
        self.rng = random.Random(seed)
        # The bucket's clock as clients see it, this many seconds off the machine's: every
        # `Date` header and every RFC 3339 time in a JSON body (`updated`, `timeCreated`) is
        # shifted by it, as if the storage service's clock and this node's disagreed.
        self.clock_offset = 0.0
        self._rules: list[Rule] = []
        self._records: list[Record] = []
        self._counts: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()
        self._stopping = threading.Event()
        self.handler = _Handler

    # lifecycle (start, port, url: StandInServer's)

    def stop(self) -> None:
        """Stop serving and cut every open connection, stalled or not."""
        if self._stopping.is_set():
            return
        self._stopping.set()  # stalls end now
        super().stop()

    # rules

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove_rule(self, rule: Rule) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule]

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    # counting

    @property
    def counts(self) -> Counter[str]:
        """Requests seen so far, by kind (a copy)."""
        with self._lock:
            return Counter(self._counts)

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    @property
    def peak(self) -> Counter[str]:
        """The most requests of each kind that were being served at once (a copy)."""
        with self._lock:
            return Counter(self._peak)

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._records.clear()
            self._peak.clear()

    def _done(self, kind: str) -> None:
        with self._lock:
            self._in_flight[kind] -= 1

    # used by the handler

    def _arrive(
        self, method: str, path: str, query: str, range_header: str | None = None
    ) -> tuple[Record, Rule | None, list[Rule]]:
        """Record a request; pick the fault rule that fires (first wins) and callback rules."""
        kind, bucket, name = classify(method, path, query)
        record = Record(method, path, query, kind, bucket, name, range_header=range_header)
        chosen: Rule | None = None
        callbacks: list[Rule] = []
        with self._lock:
            self._records.append(record)
            self._counts[kind] += 1
            self._in_flight[kind] += 1
            self._peak[kind] = max(self._peak[kind], self._in_flight[kind])
            for rule in self._rules:
                if chosen is not None and rule.fault is not Fault.CALLBACK:
                    continue
                if not rule.matches(record):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.probability < 1.0 and self.rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.fault is Fault.CALLBACK:
                    callbacks.append(rule)
                else:
                    chosen = rule
                    record.fault = rule.fault
        return record, chosen, callbacks

    def _sleep(self, seconds: float) -> bool:
        """Sleep; False if the proxy was stopped meanwhile."""
        return not self._stopping.wait(seconds)


class _Handler(ProxyHandler):
    @property
    def proxy(self) -> FaultProxy:
        standin = self.server.standin
        assert isinstance(standin, FaultProxy)
        return standin

    # the request

    def serve(self, target: str) -> None:
        proxy = self.proxy
        path, _, query = target.partition("?")
        record, rule, callbacks = proxy._arrive(
            self.command, path, query, self.headers.get("Range")
        )
        try:
            self._answer(record, rule, callbacks, target)
        finally:
            proxy._done(record.kind)

    def _answer(
        self, record: Record, rule: Rule | None, callbacks: list[Rule], target: str
    ) -> None:
        proxy = self.proxy
        for cb in callbacks:
            assert cb.callback is not None
            try:
                cb.callback(record)
            except Exception as exc:  # a broken callback must not wedge the client
                proxy.errors.append(exc)
        if rule is not None and rule.fault is Fault.STATUS:
            self.discard_request_body()
            self._answer_error(record, rule.status, rule)
            return
        stall_first = rule is not None and rule.fault is Fault.STALL and rule.at is None
        if stall_first and rule is not None and not proxy._sleep(rule.delay):
            self._reset()
        self._forward(record, target, rule)

    def _answer_error(self, record: Record, status: int, rule: Rule | None = None) -> None:
        body = error_body(status, record, rule)
        record.status = status
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # forwarding

    def _forward(self, record: Record, target: str, rule: Rule | None) -> None:
        proxy = self.proxy
        body, chunked = self.request_chunks()
        conn = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            try:
                conn.connect()
                proxy._track(conn.sock, add=True)
                ignore_range = rule is not None and rule.fault is Fault.IGNORE_RANGE
                drop = ("range", "if-range") if ignore_range else ()
                send_request(conn, self.command, target, self.headers, body, chunked, drop)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                if proxy._stopping.is_set():
                    raise Abort from None
                self._answer_error(record, 502)
                self.close_connection = True
                return
            self._relay(record, resp, rule)
        finally:
            proxy._track(conn.sock, add=False)
            conn.close()

    def _relay(self, record: Record, resp: http.client.HTTPResponse, rule: Rule | None) -> None:
        proxy = self.proxy
        record.status = resp.status
        headers = relayed_headers(resp, proxy.upstream_url, proxy.url)
        if proxy.clock_offset:
            headers = [
                (k, _shift_http_date(v, proxy.clock_offset) if k.lower() == "date" else v)
                for k, v in headers
            ]
        head = send_head(self, resp, headers, lambda: self._response_body(resp))
        if head is not None:
            self._send_body(*head, rule)

    def _response_body(self, resp: http.client.HTTPResponse) -> tuple[Iterator[bytes], int | None]:
        """Body chunks and length (None: unknown); JSON gets its upstream links rewritten and,
        with a clock offset, its times shifted."""
        proxy = self.proxy

        def shift(data: bytes) -> bytes:
            return _RFC3339.sub(lambda m: _shift_rfc3339(m, proxy.clock_offset), data)

        rewrite = shift if proxy.clock_offset else None
        return response_body(resp, proxy.upstream_url, proxy.url, CHUNK, rewrite)

    def _send_body(self, chunks: Iterator[bytes], size: int | None, rule: Rule | None) -> None:
        fault = rule.fault if rule is not None else None
        half = size // 2 if size else 0
        at = half if rule is None or rule.at is None else rule.at
        cut: int | None = None
        if fault in (Fault.RESET, Fault.TRUNCATE) or (
            fault is Fault.STALL and rule is not None and rule.at is not None
        ):
            cut = at
        flip = range(at, at + rule.nbytes) if rule and fault is Fault.FLIP else range(0)
        sent = 0
        try:
            for data in chunks:
                if flip and flip.start < sent + len(data) and flip.stop > sent:
                    data = _flip(data, flip.start - sent, flip.stop - sent)
                if cut is not None and sent + len(data) >= cut:
                    head, data = data[: cut - sent], data[cut - sent :]
                    self._write(head, size)
                    sent += len(head)
                    assert rule is not None
                    self._strike(rule)  # returns only for a stall that ran its course
                    cut = None
                self._write(data, size)
                sent += len(data)
            if cut is not None and sent >= cut:
                assert rule is not None
                self._strike(rule)
            end_body(self.wfile, size)
        except (OSError, http.client.HTTPException):
            raise Abort from None

    def _write(self, data: bytes, size: int | None) -> None:
        write_body(self.wfile, data, size)

    def _strike(self, rule: Rule) -> None:
        if rule.fault is Fault.RESET:
            self._wait_sent()
            self._reset()
        if rule.fault is Fault.TRUNCATE:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_WR)
            raise Abort
        if rule.fault is Fault.STALL and not self.proxy._sleep(rule.delay):
            self._reset()

    def _wait_sent(self, timeout: float = 5.0) -> None:
        """Wait (bounded) until the client's kernel has acknowledged every byte written.

        An RST throws away whatever still sits in our send queue: without this, a client that
        reads slowly would get fewer than `at` body bytes, often none, and never resume with
        an offset. Linux only (SIOCOUTQ); elsewhere the RST goes at once.
        """
        try:
            import fcntl
            import termios

            outq = termios.TIOCOUTQ
        except (ImportError, AttributeError):
            return
        proxy = self.proxy
        for _ in range(int(timeout / 0.005)):
            try:
                raw = fcntl.ioctl(self.connection.fileno(), outq, b"\0\0\0\0")
            except OSError:
                return
            if struct.unpack("i", raw)[0] == 0 or not proxy._sleep(0.005):
                return

    def _reset(self) -> None:
        """Close the client connection with a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        raise Abort


_RFC3339 = re.compile(rb'"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z)"')


def _shift_rfc3339(m: re.Match[bytes], seconds: float) -> bytes:
    when = datetime.fromisoformat(m.group(1).decode()) + timedelta(seconds=seconds)
    return b'"' + when.isoformat(timespec="microseconds").replace("+00:00", "Z").encode() + b'"'


def _shift_http_date(value: str, seconds: float) -> str:
    when = email.utils.parsedate_to_datetime(value) + timedelta(seconds=seconds)
    return email.utils.format_datetime(when, usegmt=True)


def _flip(data: bytes, start: int, end: int) -> bytes:
    start, end = max(start, 0), min(end, len(data))
    out = bytearray(data)
    for i in range(start, end):
        out[i] ^= 0xFF
    return bytes(out)
