"""Request bodies as the test proxies read them (RFC 9112 §6-7): by length or chunked."""

from __future__ import annotations

from collections.abc import Iterator
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
