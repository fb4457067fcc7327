"""A GCE metadata server stand-in (what workload identity answers on GKE), on loopback.

Point `GCE_METADATA_HOST` and `GCE_METADATA_IP` at `host` and google-auth's Compute Engine
credentials get their tokens here. What it answers is what Google documents:

- "About VM metadata" (https://cloud.google.com/compute/docs/metadata/overview) and
  "Access VM metadata" (https://cloud.google.com/compute/docs/metadata/querying-metadata):
  values live under `/computeMetadata/v1/`; every request must carry `Metadata-Flavor: Google`
  and one without it is refused with 403 Forbidden, as is any request carrying
  `X-Forwarded-For`; every response carries `Metadata-Flavor: Google`; a directory is listed
  when its path ends in `/` (asked without the slash, the server redirects to it), and
  `?recursive=true` returns the whole directory as JSON; leaf values are text
  (`Content-Type: application/text`); unknown paths are 404.
- `instance/service-accounts/default/token` answers
  `{"access_token": ..., "expires_in": ..., "token_type": "Bearer"}`, honouring an optional
  `scopes=` (comma-separated) parameter as GKE's metadata server does
  ("Authenticate workloads using service accounts", Compute Engine documentation).

google-auth 2.63 (google/auth/compute_engine/_metadata.py, credentials.py, google/auth/_default.py)
sends, in order: a ping `GET http://$GCE_METADATA_IP/` with `Metadata-Flavor: Google` (it
requires the answer's `Metadata-Flavor: Google` header; if the ping fails it reads
/sys/class/dmi/id/product_name), then `GET /computeMetadata/v1/project/project-id`,
`GET .../instance/service-accounts/default/?recursive=true` (the email and scopes),
`GET .../instance/service-accounts/default/token?scopes=...`, and
`GET .../universe/universe-domain` (a 404 there means googleapis.com).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.support.oauth import DEFAULT_PROJECT
from tests.support.standin import StandInHandler, StandInServer
from tests.support.tokens import TokenRegistry

__all__ = ["DEFAULT_GCE_EMAIL", "MetadataRequest", "MetadataServer"]

DEFAULT_GCE_EMAIL = f"workload@{DEFAULT_PROJECT}.iam.gserviceaccount.com"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ROOT = "/computeMetadata/v1/"
FLAVOR = {"Metadata-Flavor": "Google", "Server": "Metadata Server for VM"}
TEXT = "application/text"


@dataclass(frozen=True)
class MetadataRequest:
    method: str
    path: str
    query: str
    flavored: bool
    status: int


class MetadataServer(StandInServer):
    """Serves one instance whose default service account is `email`."""

    def __init__(
        self,
        tokens: TokenRegistry | None = None,
        *,
        email: str = DEFAULT_GCE_EMAIL,
        project: str = DEFAULT_PROJECT,
        numeric_project: str = "123456789012",
        scopes: tuple[str, ...] = (CLOUD_PLATFORM,),
        universe_domain: str | None = "googleapis.com",
    ) -> None:
        super().__init__()
        self.handler = _MetadataHandler
        self.tokens = tokens if tokens is not None else TokenRegistry()
        self.email = email
        self.project = project
        self.numeric_project = numeric_project
        self.scopes = scopes
        self.universe_domain = universe_domain
        self._requests: list[MetadataRequest] = []
        self._state_lock = threading.Lock()

    @property
    def host(self) -> str:
        """host:port, the form GCE_METADATA_HOST and GCE_METADATA_IP take."""
        return f"127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[MetadataRequest]:
        with self._state_lock:
            return list(self._requests)

    @property
    def token_requests(self) -> int:
        return sum(1 for r in self.requests if r.path.endswith("/token") and r.status == 200)

    @property
    def refused(self) -> list[MetadataRequest]:
        return [r for r in self.requests if r.status == 403]

    def _record(self, request: MetadataRequest) -> None:
        with self._state_lock:
            self._requests.append(request)

    def account(self, name: str) -> dict[str, object] | None:
        """The service-account directory for `default` or the email; None for any other."""
        if name not in ("default", self.email):
            return None
        return {"aliases": ["default"], "email": self.email, "scopes": list(self.scopes)}

    def tree(self) -> dict[str, object]:
        """The part of the metadata tree this stand-in knows, as `?recursive=true` shows it."""
        account = self.account("default")
        assert account is not None
        universe = {"universe-domain": self.universe_domain} if self.universe_domain else {}
        return {
            "instance": {"service-accounts": {"default": account, self.email: account}},
            "project": {"project-id": self.project, "numeric-project-id": self.numeric_project},
            "universe": universe,
        }


def _listing(directory: dict[str, object]) -> str:
    return "".join(f"{k}/\n" if isinstance(v, dict) else f"{k}\n" for k, v in directory.items())


_Reply = tuple[int, str, str, dict[str, str]]


def _reply(status: int, body: str, ctype: str = TEXT, **headers: str) -> _Reply:
    return status, body, ctype, headers


def _not_found() -> _Reply:
    return _reply(404, "<!DOCTYPE html>\n<title>Error 404 (Not Found)</title>\n", "text/html")


class _MetadataHandler(StandInHandler):
    def do_GET(self) -> None:
        md = self.server.standin
        assert isinstance(md, MetadataServer)
        split = urlsplit(self.path)
        if self.command == "POST":
            self.read_body()
            status, body, ctype, headers = _reply(405, "Method Not Allowed\n")
        else:
            status, body, ctype, headers = self._serve(md, split.path, parse_qs(split.query))
        flavored = self.headers.get("Metadata-Flavor") == "Google"
        md._record(MetadataRequest(self.command, split.path, split.query, flavored, status))
        self.answer(status, body, ctype, {**FLAVOR, **headers})

    do_HEAD = do_POST = do_GET

    def _serve(self, md: MetadataServer, path: str, query: dict[str, list[str]]) -> _Reply:
        if self.headers.get("X-Forwarded-For") is not None:
            return _reply(403, "Request denied: X-Forwarded-For header present.\n")
        if self.headers.get("Metadata-Flavor") != "Google":
            return _reply(403, "Missing required header: Metadata-Flavor: Google\n")
        if path in ("", "/"):
            return _reply(200, "computeMetadata/\n")
        if path in ("/computeMetadata", "/computeMetadata/"):
            return _reply(200, "v1/\n")
        if not path.startswith(ROOT.rstrip("/")):
            return _not_found()
        rel = path[len(ROOT) :] if path.startswith(ROOT) else ""
        parts = [p for p in rel.split("/") if p]
        if (
            len(parts) == 4
            and parts[:2] == ["instance", "service-accounts"]
            and parts[3] == "token"
            and md.account(parts[2]) is not None
        ):
            return self._token(md, query)
        node: object = md.tree()
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                return _not_found()
            node = node[part]
        if isinstance(node, dict) and not path.endswith("/"):
            return _reply(301, "", Location=path + "/")
        if query.get("recursive") == ["true"] or query.get("alt") == ["json"]:
            return _reply(200, json.dumps(node), "application/json")
        if isinstance(node, dict):
            return _reply(200, _listing(node))
        if isinstance(node, list):
            return _reply(200, "".join(f"{v}\n" for v in node))
        return _reply(200, str(node))

    def _token(self, md: MetadataServer, query: dict[str, list[str]]) -> _Reply:
        asked = ",".join(query.get("scopes", []))
        scopes = tuple(s for s in asked.split(",") if s) or md.scopes
        token = md.tokens.issue(md.email, scopes, issuer="metadata")
        doc = {"access_token": token.value, "expires_in": token.expires_in, "token_type": "Bearer"}
        return _reply(200, json.dumps(doc), "application/json")
