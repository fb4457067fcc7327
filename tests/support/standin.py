"""The loopback HTTP(S) server each stand-in (token endpoint, metadata server, authenticating
proxy) runs on: threaded, on a free 127.0.0.1 port, TLS optional, stopped cleanly."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.support.httpbody import Abort, origin_form, request_body

__all__ = ["ProxyHandler", "StandInHandler", "StandInServer"]


class StandInServer:
    """A threaded HTTP(S) server on a free 127.0.0.1 port, served by a daemon thread.

    Subclasses set `handler` (a `StandInHandler`); the handler reaches the stand-in as
    `self.server.standin`. With `ssl_context`, each connection does its TLS handshake in its
    own thread, and a failed handshake is counted in `handshake_failures`.
    """

    handler: type[StandInHandler]

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.errors: list[BaseException] = []
        self.handshake_failures: list[str] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._server = _Server(("127.0.0.1", 0), self.handler)
        self._server.standin = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, and cut the keep-alive connections clients still hold."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _track(self, sock: socket.socket | None, add: bool) -> None:
        if sock is None:  # a connection that never connected
            return
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    standin: StandInServer

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.standin.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            conn = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            with self.standin._lock:
                self.standin.handshake_failures.append(str(exc))
            return
        try:
            conn.settimeout(None)
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | http.client.HTTPException):
            return  # a client went away mid-request
        if exc is not None:
            self.standin.errors.append(exc)
        super().handle_error(request, client_address)


class StandInHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, quiet, with a helper to answer a whole body at once."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.standin._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def read_body(self, limit: int = 1 << 20) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise ValueError(f"request body of {length} bytes is over {limit}")
        return self.rfile.read(length) if length else b""

    def answer(
        self,
        status: int,
        body: bytes | str,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def answer_json(
        self, status: int, doc: object, headers: Mapping[str, str] | None = None
    ) -> None:
        self.answer(status, json.dumps(doc), "application/json; charset=utf-8", headers)


class ProxyHandler(StandInHandler):
    """A forwarding proxy's handler: every method goes to `serve` with the request target in
    origin form; a client gone mid-request (Abort) ends the connection."""

    chunk = 64 * 1024  # request bodies are read and forwarded this much at a time

    def do_GET(self) -> None:
        try:
            self.serve(origin_form(self.path))
        except Abort:
            self.close_connection = True

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def serve(self, target: str) -> None:
        raise NotImplementedError

    def request_chunks(self) -> tuple[Iterator[bytes], bool]:
        """The request body as chunks, and whether it came chunked."""
        return request_body(self.headers, self.rfile, self.chunk)

    def discard_request_body(self) -> None:
        for _ in self.request_chunks()[0]:
            pass
