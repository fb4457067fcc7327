"""A shaped link: a TCP proxy that caps each connection's download rate and delays requests.

    python -m bench.shaped --upstream http://127.0.0.1:4443 --rate 40M --delay 0.03

It listens on 127.0.0.1 (a free port unless `--port`), prints one JSON line
`{"url": "http://127.0.0.1:PORT", ...}` and then forwards every TCP connection to the upstream:

- **Rate**: each connection has its own token bucket on the downstream direction
  (server → client): `--rate` bytes per second (`40M` = 40 MiB/s; `0` = unlimited), `--burst`
  bytes of credit at most (default 256 KiB). After each read from the upstream (at most 256 KiB,
  asyncio's read size) the bucket is charged; when it is in debt, reading from the upstream
  pauses until the debt is paid, so TCP's own flow control slows the server. Uploads
  (client → server) are not shaped.
- **Delay**: a new request is the first bytes the client sends on a connection, and then the
  first bytes it sends after the server has sent anything since: HTTP/1.1 clients do not
  pipeline, so that is each request line. Those bytes (and whatever follows them) are held
  `--delay` seconds before they go upstream: every request pays the delay once, the TCP
  connect does not. (A `100 Continue` exchange would count its body as a second request;
  nothing here uploads.)
- **Counts**: connections accepted, requests (as detected above), bytes each way.

No per-byte Python work: asyncio protocols hand whole reads from one transport to the other.
As a subprocess (the harness's way, see `ShapedLink`), its CPU is its own: stdin is its
control channel, a line `stats` answers one JSON line of the counters on stdout, end of input
stops it. `--forever` ignores stdin (stop it with Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tests.support.emulator import free_port

MiB = 1 << 20
REPO = Path(__file__).resolve().parent.parent
DEFAULT_RATE = 40 * MiB
DEFAULT_DELAY = 0.03
DEFAULT_BURST = 256 << 10
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([KMG]?)(?:I?B)?(?:/S)?\s*$")


def parse_rate(text: str) -> float:
    """`40M`, `40MiB/s`, `512K`, `1.5G`, `1000` (bytes) → bytes per second; units are binary."""
    match = _RATE.match(text.upper())
    if not match:
        raise ValueError(f"not a rate: {text!r} (e.g. 40M, 512K, 0 for unlimited)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class TokenBucket:
    """Bytes allowed per second, with at most `burst` bytes of saved-up credit.

    `take(n, now)` spends n bytes and says how long to wait before reading more: the bucket may
    go into debt by one read, which the wait pays off. Over time the rate holds exactly.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, n: int, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RequestTracker:
    """Finds where requests start on one connection: the client's first bytes, and its first
    bytes after the server has sent something (HTTP/1.1 without pipelining)."""

    def __init__(self) -> None:
        self.answered = True  # nothing asked yet: the first client bytes start a request

    def client_data(self) -> bool:
        """The client sent bytes; True when they start a new request."""
        new, self.answered = self.answered, False
        return new

    def server_data(self) -> None:
        self.answered = True


class LinkStats(NamedTuple):
    connections: int = 0
    requests: int = 0
    bytes_down: int = 0  # server → client
    bytes_up: int = 0

    def since(self, before: LinkStats) -> LinkStats:
        return LinkStats(*(a - b for a, b in zip(self, before, strict=True)))


class _Link:
    """The proxy's settings and counters, shared by its connections."""

    def __init__(self, host: str, port: int, rate: float, delay: float, burst: float) -> None:
        self.host, self.port = host, port
        self.rate, self.delay, self.burst = rate, delay, burst
        self.connections = self.requests = self.bytes_down = self.bytes_up = 0

    def stats(self) -> LinkStats:
        return LinkStats(self.connections, self.requests, self.bytes_down, self.bytes_up)


class _Pausable:
    """A transport's reading, paused while any reason holds."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.reasons: set[str] = set()

    def pause(self, reason: str) -> None:
        if not self.reasons and not self.transport.is_closing():
            self.transport.pause_reading()
        self.reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason in self.reasons:
            self.reasons.discard(reason)
            if not self.reasons and not self.transport.is_closing():
                self.transport.resume_reading()


class _Connection:
    """One client connection and its upstream connection."""

    def __init__(self, link: _Link, client: asyncio.Transport) -> None:
        self.link = link
        self.loop = asyncio.get_running_loop()
        self.client = _Pausable(client)
        self.upstream: _Pausable | None = None
        self.pending: list[bytes] = []  # client bytes not yet sent: upstream not there, or held
        self.held = False
        self.client_eof = False
        self.bucket = TokenBucket(link.rate, link.burst, self.loop.time())
        self.tracker = RequestTracker()
        client.set_write_buffer_limits(high=1 << 20)
        link.connections += 1
        self._connecting = self.loop.create_task(self._connect())  # a reference: not GC'd

    async def _connect(self) -> None:
        try:
            transport, _ = await self.loop.create_connection(
                lambda: _UpstreamProtocol(self), self.link.host, self.link.port
            )
        except OSError:
            self.client.transport.abort()
            return
        if self.client.transport.is_closing():
            transport.close()
            return
        transport.set_write_buffer_limits(high=1 << 20)
        self.upstream = _Pausable(transport)
        self._flush()

    def _flush(self) -> None:
        if self.upstream is None or self.held:
            return
        for chunk in self.pending:
            self.upstream.transport.write(chunk)
        self.pending.clear()
        if self.client_eof and self.upstream.transport.can_write_eof():
            self.upstream.transport.write_eof()

    def _release(self) -> None:
        self.held = False
        self._flush()
        self.client.resume("delay")

    # client → upstream
    def client_data(self, data: bytes) -> None:
        self.link.bytes_up += len(data)
        if self.tracker.client_data():
            self.link.requests += 1
            if self.link.delay > 0:
                self.held = True
                self.client.pause("delay")
                self.loop.call_later(self.link.delay, self._release)
        self.pending.append(data)
        self._flush()

    def client_eof_received(self) -> None:
        self.client_eof = True
        self._flush()

    # upstream → client
    def upstream_data(self, data: bytes) -> None:
        n = len(data)
        self.link.bytes_down += n
        self.tracker.server_data()
        self.client.transport.write(data)
        wait = self.bucket.take(n, self.loop.time())
        if wait > 0 and self.upstream is not None:
            self.upstream.pause("rate")
            self.loop.call_later(wait, self.upstream.resume, "rate")

    def close(self, exc: Exception | None) -> None:
        for side in (self.client, self.upstream):
            if side is not None and not side.transport.is_closing():
                side.transport.abort() if exc else side.transport.close()


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, link: _Link) -> None:
        self.link = link
        self.conn: _Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn = _Connection(self.link, transport)

    def data_received(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.client_data(data)

    def eof_received(self) -> bool:
        assert self.conn is not None
        self.conn.client_eof_received()
        return True  # keep the transport: the response may still be on its way

    def pause_writing(self) -> None:  # the client is slower than the upstream
        if self.conn and self.conn.upstream:
            self.conn.upstream.pause("flow")

    def resume_writing(self) -> None:
        if self.conn and self.conn.upstream:
            self.conn.upstream.resume("flow")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn:
            self.conn.close(exc)


class _UpstreamProtocol(asyncio.Protocol):
    def __init__(self, conn: _Connection) -> None:
        self.conn = conn

    def data_received(self, data: bytes) -> None:
        self.conn.upstream_data(data)

    def eof_received(self) -> bool:
        client = self.conn.client.transport
        if client.can_write_eof() and not client.is_closing():
            client.write_eof()
        return True

    def pause_writing(self) -> None:
        self.conn.client.pause("flow")

    def resume_writing(self) -> None:
        self.conn.client.resume("flow")

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close(exc)


async def _serve(args: argparse.Namespace) -> None:
    up = urlsplit(args.upstream if "//" in args.upstream else f"//{args.upstream}")
    if not up.hostname or not up.port:
        raise SystemExit(f"--upstream needs a host and a port: {args.upstream!r}")
    link = _Link(up.hostname, up.port, args.rate, args.delay, args.burst)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _ClientProtocol(link), args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"url": f"http://{args.host}:{port}", "upstream": args.upstream,
                      "rate": args.rate, "delay": args.delay, "burst": args.burst}),
          flush=True)  # fmt: skip
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task: asyncio.Task[None] | None = None
    if not args.forever:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def control() -> None:
            while line := await reader.readline():
                if line.strip() == b"stats":
                    print(json.dumps(link.stats()._asdict()), flush=True)
            stop.set()

        task = loop.create_task(control())
    await stop.wait()
    server.close()
    if task is not None:
        task.cancel()
    print(json.dumps(link.stats()._asdict()), file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="http://HOST:PORT to forward to")
    p.add_argument("--rate", type=parse_rate, default=DEFAULT_RATE,
                   help="per connection, downstream (default 40M: 40 MiB/s; 0: none)")  # fmt: skip
    p.add_argument("--delay", type=float, default=DEFAULT_DELAY,
                   help="seconds added to every request (default 0.03)")  # fmt: skip
    p.add_argument("--burst", type=parse_rate, default=DEFAULT_BURST,
                   help="token bucket size in bytes (default 256K)")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="listen port (default: a free one)")
    p.add_argument("--forever", action="store_true", help="ignore stdin; stop on SIGINT/SIGTERM")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(parse_args(argv)))
    return 0


class ShapedLink:
    """The proxy as a subprocess: `start()`, `.url`, `.stats()` / `.connections` / `.requests`,
    `.pid` (its CPU is its own), `stop()`. Its stderr (final counts, errors) goes to `log`."""

    def __init__(self, upstream: str, rate: float = DEFAULT_RATE, delay: float = DEFAULT_DELAY,
                 burst: float = DEFAULT_BURST, python: str = sys.executable,
                 log: Path | None = None) -> None:  # fmt: skip
        self.upstream = upstream
        self.rate, self.delay, self.burst = rate, delay, burst
        self.python = python
        self.log = log
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> ShapedLink:
        # The emulator may not listen yet: its port is picked but free, and port 0 here could
        # be handed the same one. Pick ours, never the upstream's.
        taken = urlsplit(self.upstream).port
        port = free_port()
        while port == taken:
            port = free_port()
        cmd = [
            self.python, "-m", "bench.shaped", "--upstream", self.upstream,
            "--rate", str(int(self.rate)), "--delay", str(self.delay),
            "--burst", str(int(self.burst)), "--port", str(port),
        ]  # fmt: skip
        with contextlib.ExitStack() as stack:
            err = stack.enter_context(open(self.log, "ab")) if self.log else None
            self._proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
            )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(10)
            raise RuntimeError(f"shaped link did not start (exit {self._proc.returncode})")
        self.url = json.loads(line)["url"]
        return self

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("shaped link is not running")
        return self._proc.pid

    def stats(self) -> LinkStats:
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise RuntimeError("shaped link is not running")
        self._proc.stdin.write("stats\n")
        self._proc.stdin.flush()
        fields: dict[str, Any] = json.loads(self._proc.stdout.readline())
        return LinkStats(**fields)

    @property
    def connections(self) -> int:
        return self.stats().connections

    @property
    def requests(self) -> int:
        return self.stats().requests

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()

    def __enter__(self) -> ShapedLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    raise SystemExit(main())
