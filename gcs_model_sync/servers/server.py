"""Ask the model server which version of a model it serves: a rollout is confirmed when the
server reports the new version ready, not when its folder is in place.

What is asked, and what the answers mean, is what each protocol's document defines:

- TF Serving, RESTful API, "Model status API"
  (https://www.tensorflow.org/tfx/serving/api_rest#model_status_api):
  `GET /v1/models/<name>` answers the JSON form of GetModelStatusResponse,
  `{"model_version_status": [{"version": "3", "state": "AVAILABLE",
  "status": {"error_code": "OK", "error_message": ""}}]}`, one entry for every version the
  server has handled (states START, LOADING, AVAILABLE, UNLOADING, END; the int64 version is a
  JSON string). A model it does not know is 404 `{"error": "..."}`.
- KServe Open Inference Protocol v2, REST, "Model Ready"
  (https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol,
  https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md):
  `GET /v2/models/<name>/versions/<v>/ready`; the status code is the answer, 200 ready and
  4xx not ready (Triton in poll mode, OpenVINO Model Server; KServe's Python runtimes refuse
  a version in the path).
- Triton, "Model Repository Extension"
  (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md):
  with `--model-control-mode=explicit` nothing is loaded or reloaded until
  `POST /v2/repository/models/<name>/load`, which answers 200 once the model is loaded and an
  HTTP error status (typically 400) with `{"error": "..."}` when it could not be.

Plain http.client, one connection per request: the CLI imports this module for its choices,
so it stays free of requests and google libraries, and no proxy from the environment sits
between the sync and a server that usually runs next to it.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from gcs_model_sync.errors import ConfigError, SyncError
from gcs_model_sync.redaction import shown_url

if TYPE_CHECKING:
    from gcs_model_sync.retry import StopToken

__all__ = ["Kind", "ModelServer", "ServerError", "kinds_help", "server_name"]

MAX_BODY = 1 << 20  # a status document is small; more is not the protocol
NOT_ASKABLE = frozenset({401, 403, 407})  # refused the question: not an answer about the model


class Kind(StrEnum):
    TFSERVING = "tfserving"
    KSERVE = "kserve-v2"
    TRITON = "triton-explicit"


# What each kind asks, as `--server-kind` says it in `--help`: a new kind is a row here.
ABOUT = {
    Kind.TFSERVING: "REST /v1/models",
    Kind.KSERVE: "Triton, OpenVINO, KServe runtimes",
    Kind.TRITON: "also asks Triton to load each changed model",
}


def kinds_help() -> str:
    """`--server-kind`'s help: every kind, and what it asks."""
    said = [f"{kind} ({ABOUT[kind]})" for kind in Kind]
    return f"{', '.join(said[:-1])}, or {said[-1]}."


class ServerError(SyncError):
    """The model server could not be asked, or answered outside its protocol."""


def server_name(model: str, dest: Path) -> str:
    """Model path relative to DEST -> the name the server knows it by: tfs_config.model_name
    rules ("team/resnet" -> "team_resnet"), and DEST's basename for the empty path."""
    from gcs_model_sync.servers.tfs_config import (
        model_name,  # its imports are not needed for --help
    )

    return model_name(model) if model else model_name(Path(os.path.abspath(dest)).name)


@dataclass(frozen=True, slots=True)
class ModelServer:
    """One model server's REST endpoint: `url` is http(s)://host:port[/path-prefix]."""

    url: str
    kind: Kind
    timeout: float = 5.0  # per request
    poll: float = 0.5  # between two asks while waiting for a version

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

    def served(self, name: str, candidates: Iterable[int]) -> int | None:
        """The newest of `candidates` (the version numbers on disk) that the server reports
        ready: TF Serving's AVAILABLE entries, or for v2 a 200 from the version's ready
        endpoint, asked newest first, stopping at the first ready one.

        None when it serves none of them or does not know the model (404, or another 4xx
        that means not ready). ServerError when it cannot be reached or answers something
        that is not the protocol (5xx, bad JSON).
        """
        wanted = set(candidates)
        quoted = quote(name, safe="")
        if self.kind == Kind.TFSERVING:
            status, body = self._request(name, "GET", f"/v1/models/{quoted}")
            if status != 200:
                self._not_ready(name, status, body)
                return None
            ready = self._available(name, body) & wanted
            return max(ready) if ready else None
        for version in sorted(wanted, reverse=True):
            status, body = self._request(
                name, "GET", f"/v2/models/{quoted}/versions/{version}/ready"
            )
            if status == 200:
                return version
            self._not_ready(name, status, body)
        return None

    def load(self, name: str, timeout: float | None = None) -> None:
        """Ask Triton (explicit model control) to load the model's newest version; a no-op for
        the kinds that find new versions themselves.

        Triton answers only once the model is loaded or has failed to, so a big model wants a
        `timeout` (seconds) longer than the per-request one.
        """
        if self.kind != Kind.TRITON:
            return
        path = f"/v2/repository/models/{quote(name, safe='')}/load"
        status, body = self._request(name, "POST", path, b"{}", timeout)
        if status != 200:
            raise self._error(name, f"load failed: {_error_text(body) or f'HTTP {status}'}")

    def wait_until_served(
        self,
        name: str,
        version: int,
        candidates: Iterable[int],
        within: float,
        stop: StopToken,
    ) -> int | None:
        """Poll served() until it reports `version` or newer, for `within` seconds at most;
        returns what it last saw (possibly None), also when `stop` ends the wait early.

        A ServerError while polling is retried (a server restarting, a sidecar not ready yet)
        until `within` runs out; then the last one is raised.
        """
        wanted = {*candidates, version}
        deadline = time.monotonic() + within
        seen: int | None = None
        while True:
            failure: ServerError | None = None
            try:
                seen = self.served(name, wanted)
            except ServerError as exc:
                failure = exc
            if seen is not None and seen >= version:
                return seen
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if failure is not None:
                    raise failure
                return seen
            if stop.wait(min(self.poll, remaining)):
                return seen

    def _request(
        self,
        name: str,
        method: str,
        path: str,
        body: bytes | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
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
            raise self._error(name, _describe(exc, limit)) from None
        finally:
            conn.close()

    def _not_ready(self, name: str, status: int, body: bytes) -> None:
        """Return for an answer that means "not ready"; raise for anything else."""
        if 400 <= status < 500 and status not in NOT_ASKABLE and status != 429:
            return
        text = _error_text(body)
        raise self._error(name, f"HTTP {status}" + (f": {text}" if text else ""))

    def _available(self, name: str, body: bytes) -> set[int]:
        """The AVAILABLE versions in a GetModelStatusResponse."""
        try:
            doc = json.loads(body)
            entries = doc["model_version_status"]
            if not isinstance(entries, list):
                raise TypeError(entries)
            return {
                int(entry.get("version", 0))
                for entry in entries
                if entry.get("state") == "AVAILABLE"
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            snippet = _one_line(body.decode("utf-8", "replace"))[:80]
            raise self._error(name, f"not a TF Serving model status: {snippet!r}") from None

    def _error(self, name: str, what: str) -> ServerError:
        return ServerError(f"--server {self.shown}: model {name}: {_one_line(what)}")


def _error_text(body: bytes) -> str:
    """The server's own words: the `error` of a JSON error object, else the start of the body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return _one_line(text)[:200]
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return _one_line(doc["error"])
    return _one_line(text)[:200]


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


def _one_line(text: str) -> str:
    return " ".join(text.split())
