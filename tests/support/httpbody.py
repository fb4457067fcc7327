"""Requests as the test proxies read and forward them (RFC 9112 §6-7): bodies by length or
chunked, headers less the hop-by-hop ones."""

from __future__ import annotations

import http.client
from collections.abc import Collection, Iterable, Iterator
from email.message import Message
from io import BufferedIOBase


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
