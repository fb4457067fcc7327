"""An authenticating reverse proxy in front of the emulator: GCS's front door, on loopback.

fake-gcs-server accepts anyone. Put `AuthProxy(emulator.url, tokens)` between a client and it,
and every request must carry `Authorization: Bearer <token>` with a token live in `tokens`
(minted by the OAuth or metadata stand-in), as the real JSON API demands. It can also play a
requester-pays bucket, an identity without access, and a TLS endpoint with a private CA.
Allowed requests are forwarded as they are (any method, path, query and body, streamed both
ways, status and headers kept except hop-by-hop ones); upstream links in small JSON bodies and
`Location` headers are rewritten to the proxy.

Refusals are the JSON API's, as documented:

- "HTTP status and error codes for JSON" (https://cloud.google.com/storage/docs/json_api/v1/status-codes):
  the error body `{"error": {"code", "message", "errors": [{"domain", "reason", "message",
  "locationType", "location"}]}}`; 401 `required` "Login Required" without an Authorization
  header, 401 `authError` "Invalid Credentials" for a token that is not (or no longer) valid,
  each with a `WWW-Authenticate: Bearer realm="https://accounts.google.com/"` challenge (with
  `error="invalid_token"` for a bad token, RFC 6750 section 3.1); 403 `forbidden` when the
  caller lacks the permission, naming caller and permission.
- "Requester Pays" (https://cloud.google.com/storage/docs/requester-pays) and "Use Requester
  Pays": a request on such a bucket must name a billing project in the `userProject` query
  parameter, else 400 `required` "Bucket is a requester pays bucket but no user project
  provided."
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
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
from tests.support.tls import TLSFiles
from tests.support.tokens import TokenRegistry

__all__ = ["AuthProxy", "Kind", "ProxiedRequest", "classify", "gcs_error"]

CHUNK = 256 * 1024
REALM = 'Bearer realm="https://accounts.google.com/"'

Kind = Literal["list", "read", "metadata", "bucket", "upload", "other"]


@dataclass(eq=False)
class ProxiedRequest:
    """One request the proxy saw: its Authorization header as it came (None: it had none), the
    bearer token presented, whose it is if it was live, and the status it got."""

    method: str
    path: str
    query: str
    kind: Kind
    bucket: str | None
    name: str | None
    identity: str | None = None
    token: str | None = None
    status: int | None = None
    authorization: str | None = None

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


def classify(method: str, path: str, query: str) -> tuple[Kind, str | None, str | None]:
    """(kind, bucket, object name) of a JSON API request; `read` is an object's bytes."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    prefix, _, rest = path.partition("/storage/v1/b/")
    if prefix not in ("", "/upload", "/download") or not rest:
        return "other", None, None
    quoted_bucket, _, objects = rest.partition("/")
    bucket = unquote(quoted_bucket)
    collection, _, quoted_name = objects.partition("/")
    name = unquote(quoted_name) if quoted_name else None
    if prefix == "/upload":
        return "upload", bucket, name or params.get("name")
    if prefix == "/download":
        return "read", bucket, name
    if collection != "o":
        return ("bucket" if not objects and method == "GET" else "other"), bucket, None
    if method != "GET":
        return "other", bucket, name
    if name is None:
        return "list", bucket, None
    return ("read" if params.get("alt") == "media" else "metadata"), bucket, name


def gcs_error(
    status: int,
    message: str,
    reason: str,
    location: str | None = None,
) -> bytes:
    """A JSON API error body."""
    item: dict[str, str] = {"domain": "global", "reason": reason, "message": message}
    if location:
        item |= {"locationType": "header", "location": location}
    return json.dumps({"error": {"code": status, "message": message, "errors": [item]}}).encode()


def _permission(record: ProxiedRequest) -> tuple[str, str]:
    """(permission, resource kind) the real service checks for this request."""
    if record.kind == "list":
        return "storage.objects.list", "bucket"
    if record.kind in ("read", "metadata"):
        return "storage.objects.get", "object"
    if record.kind == "bucket":
        return "storage.buckets.get", "bucket"
    if record.method == "DELETE":
        return "storage.objects.delete", "object"
    return "storage.objects.create", "object"


class AuthProxy(StandInServer):
    """HTTP(S) on 127.0.0.1 in front of `upstream_url`, admitting only live bearer tokens.

    `requester_pays` (bucket names) and `deny` (identities) may be changed at any time.
    """

    def __init__(
        self,
        upstream_url: str,
        tokens: TokenRegistry,
        *,
        tls: TLSFiles | None = None,
        requester_pays: Iterable[str] = (),
        deny: Iterable[str] = (),
        upstream_timeout: float = 30.0,
    ) -> None:
        super().__init__(tls.server_context() if tls else None)
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        self.handler = _ProxyHandler
        self.tokens = tokens
        self.upstream_url = f"http://{parts.netloc}"
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_timeout = upstream_timeout
        self.requester_pays: set[str] = set(requester_pays)
        self.deny: set[str] = set(deny)
        self._records: list[ProxiedRequest] = []
        self._state_lock = threading.Lock()

    def expire_after(self, uses: int | None) -> None:
        """Refuse each token once it has been used `uses` times, as if it had expired."""
        self.tokens.expire_after(uses)

    @property
    def records(self) -> list[ProxiedRequest]:
        with self._state_lock:
            return list(self._records)

    def statuses(self) -> Counter[int | None]:
        return Counter(r.status for r in self.records)

    def reset(self) -> None:
        with self._state_lock:
            self._records.clear()

    def _arrive(self, method: str, path: str, query: str) -> ProxiedRequest:
        kind, bucket, name = classify(method, path, query)
        record = ProxiedRequest(method, path, query, kind, bucket, name)
        with self._state_lock:
            self._records.append(record)
        return record

    def refusal(
        self, record: ProxiedRequest, authorization: str | None
    ) -> tuple[int, bytes, dict[str, str]] | None:
        """(status, body, headers) when the real service would refuse this request."""
        record.authorization = authorization
        scheme, _, value = (authorization or "").strip().partition(" ")
        if not authorization:
            body = gcs_error(401, "Login Required", "required", "Authorization")
            return 401, body, {"WWW-Authenticate": REALM}
        presented = value.strip() if scheme.lower() == "bearer" else ""
        record.token = presented or None
        token = self.tokens.use(presented) if presented else None
        if token is None:
            body = gcs_error(401, "Invalid Credentials", "authError", "Authorization")
            return 401, body, {"WWW-Authenticate": f'{REALM}, error="invalid_token"'}
        record.identity = token.email
        if token.email in self.deny:
            permission, target = _permission(record)
            message = (
                f"{token.email} does not have {permission} access to the Google Cloud Storage "
                f"{target}. Permission '{permission}' denied on resource (or it may not exist)."
            )
            return 403, gcs_error(403, message, "forbidden"), {}
        if record.bucket in self.requester_pays and not record.params.get("userProject"):
            message = "Bucket is a requester pays bucket but no user project provided."
            return 400, gcs_error(400, message, "required"), {}
        return None


class _ProxyHandler(ProxyHandler):
    chunk = CHUNK

    @property
    def proxy(self) -> AuthProxy:
        standin = self.server.standin
        assert isinstance(standin, AuthProxy)
        return standin

    def serve(self, target: str) -> None:
        path, _, query = target.partition("?")
        record = self.proxy._arrive(self.command, path, query)
        refusal = self.proxy.refusal(record, self.headers.get("Authorization"))
        if refusal is not None:
            status, body, headers = refusal
            self.discard_request_body()
            record.status = status
            self.answer(status, body, "application/json; charset=UTF-8", headers)
            return
        self._forward(record, target)

    # forwarding

    def _forward(self, record: ProxiedRequest, target: str) -> None:
        proxy = self.proxy
        body, chunked = self.request_chunks()
        conn = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            try:
                send_request(
                    conn, self.command, target, self.headers, body, chunked, ("authorization",)
                )
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException):
                record.status = 502
                body_502 = gcs_error(502, "Bad Gateway", "backendError")
                self.close_connection = True
                self.answer(502, body_502, "application/json; charset=UTF-8")
                return
            self._relay(record, resp)
        finally:
            conn.close()

    def _relay(self, record: ProxiedRequest, resp: http.client.HTTPResponse) -> None:
        proxy = self.proxy
        record.status = resp.status
        head = send_head(
            self,
            resp,
            relayed_headers(resp, proxy.upstream_url, proxy.url),
            lambda: response_body(resp, proxy.upstream_url, proxy.url, CHUNK),
        )
        if head is None:
            return
        chunks, size = head
        try:
            for data in chunks:
                write_body(self.wfile, data, size)
            end_body(self.wfile, size)
        except (OSError, http.client.HTTPException):
            raise Abort from None
