"""/healthz, /readyz and /metrics for Kubernetes probes and Prometheus.

/healthz: 200 while the loop is alive and no pass has run longer than --stuck-after.
/readyz:  200 once a pass has completed its listing and DEST holds at least one model version.
          After that a failed pass (a bad object, a bucket outage, a full disk) never turns it
          503 while versions stay on disk: a replica serves what it has, and staleness is for
          alerting (the metrics). 503 again only when no version is left on disk.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gcs_model_sync.errors import ConfigError
from gcs_model_sync.serve.metrics import Labelled, Metrics

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
_DOTTED_NUMBERS = re.compile(r"[\d.]+")  # 300.1.1.1 is no address, nor a name to look up


def bind_address(host: str) -> tuple[socket.AddressFamily, str]:
    """--http-host as (address family, address): an IPv4 address, an IPv6 one (`::1`, or
    `[::1]` as in a URL), or a host name, resolved here. A usage error otherwise."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), name
    if not _HOSTNAME.fullmatch(name) or _DOTTED_NUMBERS.fullmatch(name):
        raise ConfigError(f"--http-host {host!r}: not an IP address (0.0.0.0, ::, ::1) or a name")
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)[0]
    except (OSError, IndexError) as exc:
        why = getattr(exc, "strerror", None) or "no address"
        raise ConfigError(f"--http-host {host!r}: {why}") from None
    return family, str(sockaddr[0])


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer on the address family of its host; `::` is dual stack (IPv6 and
    IPv4-mapped), so probes reach it by 127.0.0.1 and ::1 alike, on IPv6-only and dual-stack
    clusters, whatever the system's bindv6only default."""

    daemon_threads = True

    def __init__(
        self, family: socket.AddressFamily, address: tuple[str, int], handler: Any
    ) -> None:
        self.address_family = family
        super().__init__(address, handler)

    def server_bind(self) -> None:
        host = str(self.server_address[0])
        if self.address_family == socket.AF_INET6 and ipaddress.ip_address(host).is_unspecified:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class Health:
    """Loop state the probes read; updated by the loop thread, read by HTTP threads."""

    def __init__(self, stuck_after: float) -> None:
        self.stuck_after = stuck_after
        self._lock = threading.Lock()
        self.pass_started: float | None = None
        self.last_ok: bool | None = None  # None until the first pass ends
        self.listed = False  # some pass has completed its listing of the bucket
        self.versions = 0  # model version folders on disk after the last pass
        self.alive = True

    def pass_begins(self) -> None:
        with self._lock:
            self.pass_started = time.monotonic()

    def pass_ends(self, ok: bool, *, listed: bool, versions: int) -> None:
        """`listed`: this pass completed its listing; `versions`: version folders on disk."""
        with self._lock:
            self.pass_started = None
            self.last_ok = ok
            self.listed = self.listed or listed
            self.versions = versions

    def healthy(self) -> tuple[bool, str]:
        with self._lock:
            if not self.alive:
                return False, "loop stopped"
            if self.pass_started is not None:
                running = time.monotonic() - self.pass_started
                if running > self.stuck_after:
                    return False, f"pass running for {running:.0f}s (> --stuck-after)"
            return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            if not self.listed:
                return False, "no pass has listed the bucket yet"
            if not self.versions:
                return False, "no model version on disk"
            why = f"ok: {self.versions} version(s) on disk"
            return True, why if self.last_ok else f"{why}; the last pass failed"


class Each:
    """The probes of several sources: healthy and ready when each source is (by the rules
    above, so one source's failed passes never unready the others' versions); the reason
    names the source."""

    def __init__(self, named: Mapping[str, Health]) -> None:
        self.named = dict(named)

    def healthy(self) -> tuple[bool, str]:
        return self._all(lambda h: h.healthy(), "ok")

    def ready(self) -> tuple[bool, str]:
        return self._all(lambda h: h.ready(), None)

    def _all(self, ask: Callable[[Health], tuple[bool, str]], ok: str | None) -> tuple[bool, str]:
        said = []
        for name, health in self.named.items():
            good, why = ask(health)
            if not good:
                return False, f"{name}: {why}"
            said.append(f"{name}: {why}")
        return True, ok or "; ".join(said)


class Server:
    def __init__(
        self, host: str, port: int, health: Health | Each, metrics: Metrics | Labelled
    ) -> None:
        family, address = bind_address(host)
        try:
            self._httpd = _HTTPServer(family, (address, port), _handler(health, metrics))
        except OSError as exc:
            raise ConfigError(
                f"--http-host {host} --http-port {port}: {exc.strerror or exc}"
            ) from None
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(health: Health | Each, metrics: Metrics | Labelled) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, why = health.healthy() if path == "/healthz" else health.ready()
                self._send(200 if ok else 503, f"{why}\n".encode(), "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the log."""

    return Handler
