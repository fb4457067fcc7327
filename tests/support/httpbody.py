"""Requests and responses as the test proxies read, forward and relay them (RFC 9112 §6-7):
bodies by length or chunked, headers less the hop-by-hop ones."""

from __future__ import annotations

import http.client
from collections.abc import Callable, Collection, Iterable, Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler
from io import BufferedIOBase
from urllib.parse import urlsplit


class Abort(Exception):
    """Stop serving this connection now: the client went away mid-request."""


def request_body(
    headers: Message, rfile: BufferedIOBase, chunk: int
) -> tuple[Iterator[bytes], bool]:
    """The request body as chunks, and whether it came chunked."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(rfile, chunk), True
    return _read_exact(rfile, int(headers.get("Content-Length") or 0), chunk), False


def _read_exact(rfile: BufferedIOBase, length: int, chunk: int) -> Iterator[bytes]:
    while length > 0:
        data = rfile.read(min(length, chunk))
        if not data:
            raise Abort
        length -= len(data)
        yield data


def _read_chunked(rfile: BufferedIOBase, chunk: int) -> Iterator[bytes]:
    while True:
        line = rfile.readline(65537)
        if not line:
            raise Abort
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield from _read_exact(rfile, size, chunk)
        rfile.readline()


HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def send_request(
    conn: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: Message,
    body: Iterable[bytes],
    chunked: bool,
    drop: Collection[str] = (),
) -> None:
    """Send the request upstream: its end-to-end headers less `drop` (lower case), `Host` for
    the upstream, one request per connection, the body re-chunked if it came chunked."""
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for key, value in headers.items():
        lower = key.lower()
        if lower in HOP_BY_HOP or lower == "host" or lower in drop:
            continue
        if chunked and lower == "content-length":
            continue
        conn.putheader(key, value)
    conn.putheader("Host", f"{conn.host}:{conn.port}")
    conn.putheader("Connection", "close")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for data in body:
        conn.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
    if chunked:
        conn.send(b"0\r\n\r\n")


# Responses as the proxies relay them (RFC 9112 §6): JSON bodies up to this size are buffered so
# that the upstream's links in them can point at the proxy instead.
REWRITE_LIMIT = 16 * 1024 * 1024


def origin_form(target: str) -> str:
    """`/path?query` of a request target, also when a client sent it absolute (as to a forward
    proxy)."""
    if "://" not in target.split("?", 1)[0]:
        return target
    split = urlsplit(target)
    return split.path + (f"?{split.query}" if split.query else "")


def relayed_headers(
    resp: http.client.HTTPResponse, upstream_url: str, url: str
) -> list[tuple[str, str]]:
    """The response's end-to-end headers, less `Content-Length` (the relay frames the body
    itself), with `Location` pointing at the proxy."""
    out = []
    for key, value in resp.getheaders():
        lower = key.lower()
        if lower in HOP_BY_HOP or lower == "content-length":
            continue
        out.append((key, value.replace(upstream_url, url, 1) if lower == "location" else value))
    return out


def response_body(
    resp: http.client.HTTPResponse,
    upstream_url: str,
    url: str,
    chunk: int,
    rewrite: Callable[[bytes], bytes] | None = None,
) -> tuple[Iterator[bytes], int | None]:
    """Body chunks and length (None: unknown). A JSON body that is not too big is read whole,
    its upstream links rewritten to the proxy (then `rewrite` applied); others stream."""
    small = resp.length is None or resp.length <= REWRITE_LIMIT
    if (
        "json" in resp.getheader("Content-Type", "")
        and small
        and not resp.getheader("Content-Encoding")
    ):
        data = resp.read().replace(upstream_url.encode(), url.encode())
        if rewrite is not None:
            data = rewrite(data)
        return (data[i : i + chunk] for i in range(0, len(data), chunk)), len(data)

    def stream() -> Iterator[bytes]:
        while data := resp.read1(chunk):
            yield data

    return stream(), resp.length


def send_head(
    handler: BaseHTTPRequestHandler,
    resp: http.client.HTTPResponse,
    headers: Iterable[tuple[str, str]],
    body: Callable[[], tuple[Iterator[bytes], int | None]],
) -> tuple[Iterator[bytes], int | None] | None:
    """Status, `headers` and the framing of the body to come (`Content-Length` when its
    length is known, chunked otherwise); the body as `body()` gives it, or None when the
    response has none (HEAD, 1xx, 204, 304: their `Content-Length` passes as it is)."""
    handler.send_response_only(resp.status, resp.reason)
    for key, value in headers:
        handler.send_header(key, value)
    if handler.command == "HEAD" or resp.status in (204, 304) or resp.status < 200:
        length = resp.getheader("Content-Length")
        if length is not None:
            handler.send_header("Content-Length", length)
        handler.end_headers()
        return None
    chunks, size = body()
    if size is None:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(size))
    handler.end_headers()
    return chunks, size


def write_body(wfile: BufferedIOBase, data: bytes, size: int | None) -> None:
    """One piece of a body framed by `send_head`: as it is, or as a chunk (size None)."""
    if data:
        wfile.write(data if size is not None else b"%x\r\n%s\r\n" % (len(data), data))


def end_body(wfile: BufferedIOBase, size: int | None) -> None:
    if size is None:
        wfile.write(b"0\r\n\r\n")
