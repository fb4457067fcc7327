"""One model server's REST endpoint: a request, and what an answer outside the protocol says.

Plain http.client, one connection per request: the CLI imports the servers' modules for
their choices, so they stay free of requests and google libraries, and no proxy from the
environment sits between the sync and a server that usually runs next to it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gcs_model_sync.errors import ConfigError, SyncError
from gcs_model_sync.redaction import shown_url

MAX_BODY = 1 << 20  # a status document is small; more is not the protocol
NOT_ASKABLE = frozenset({401, 403, 407})  # refused the question: not an answer about the model


class ServerError(SyncError):
    """The model server could not be asked, or answered outside its protocol."""


@dataclass(frozen=True, slots=True)
class Rest:
    """`url` is http(s)://host:port[/path-prefix]; `timeout` is per request."""

    url: str
    timeout: float = 5.0

    def __post_init__(self) -> None:
        try:
            split = urlsplit(self.url)
        except ValueError as exc:  # an unclosed [; the URL is not shown: it may hold a password
            raise ConfigError(f"--server: {exc}; give http(s)://host[:port][/prefix]") from None
        try:
            split.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError:
            split = split._replace(netloc="")
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ConfigError(f"--server {self.shown}: not an http(s)://host[:port][/prefix] URL")
        if split.query or split.fragment:
            raise ConfigError(f"--server {self.shown}: a query or fragment has no place here")

    @property
    def shown(self) -> str:
        """The URL as messages show it: without a user:password@ part."""
        return shown_url(self.url)

    def request(
        self,
        name: str,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """(status, body) of one request about model `name`; ServerError when there is none."""
        import http.client  # with ssl, more than the rest of this module; only when asking

        split = urlsplit(self.url)
        limit = self.timeout if timeout is None else timeout
        factory = (
            http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
        )
        conn = factory(split.hostname or "", split.port, timeout=limit)
        headers = {"Accept": "application/json", "Connection": "close"}
        if split.username is not None:  # http://user:password@host: a proxy's basic auth
            pair = f"{unquote(split.username)}:{unquote(split.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, split.path.rstrip("/") + path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(MAX_BODY)
        except (OSError, http.client.HTTPException) as exc:
            raise self.error(name, _describe(exc, limit)) from None
        finally:
            conn.close()

    def not_ready(self, name: str, status: int, body: bytes) -> None:
        """Return for an answer that means "not ready"; raise for anything else."""
        if 400 <= status < 500 and status not in NOT_ASKABLE and status != 429:
            return
        text = error_text(body)
        raise self.error(name, f"HTTP {status}" + (f": {text}" if text else ""))

    def error(self, name: str, what: str) -> ServerError:
        return ServerError(f"--server {self.shown}: model {name}: {one_line(what)}")


def error_text(body: bytes) -> str:
    """The server's own words: the `error` of a JSON error object, else the start of the body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return one_line(text)[:200]
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return one_line(doc["error"])
    return one_line(text)[:200]


def one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection closed without an answer"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__
