"""A model server stand-in: TF Serving, a KServe v2 server (Triton in poll mode, OpenVINO Model
Server) or Triton in explicit model-control mode, serving a model repository folder (the
sync's DEST) on loopback.

It stands in because no real model server can be installed on these machines (each ships as a
multi-gigabyte container image, and there is no container runtime here). What it answers is
what the documents define:

- TF Serving, RESTful API, "Model status API"
  (https://www.tensorflow.org/tfx/serving/api_rest#model_status_api):
  `GET /v1/models/<name>[/versions/<v>]` answers the JSON form of GetModelStatusResponse
  (tensorflow_serving/apis/get_model_status.proto), as in the document's example:
  `{"model_version_status": [{"version": "123", "state": "AVAILABLE",
  "status": {"error_code": "OK", "error_message": ""}}]}`, the version an int64 and so a JSON
  string, the entries newest first (ServableStateMonitor's VersionMap is ordered by
  std::greater), END entries kept. Errors are `{"error": "..."}`: an unknown model is 404
  "Could not find any versions of model <name>"; a path the REST API does not know is 400
  "Malformed request: <method> <path>".
- KServe Open Inference Protocol v2, REST, "Model Ready"
  (https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol,
  https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md):
  `GET /v2/models/<name>[/versions/<v>]/ready`, 200 ready and 4xx not ready. The body is
  Triton's (src/http_server.cc, HandleModelReady): empty on 200, `{"error": "Model version not
  ready"}` with 400 otherwise, also for a model it does not know.
- Triton, "Model Repository Extension"
  (https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_model_repository.md):
  `POST /v2/repository/models/<name>/load`, body empty or a JSON object, answers 200 once
  loaded, or 400 `{"error": "..."}` with Triton's own messages ("failed to load '<name>',
  failed to poll from model repository", "... no version is available", "... versions that are
  not available: 3"). In poll mode Triton refuses it: "explicit model load / unload is not
  allowed if polling is enabled".

What it serves follows the servers' default "latest 1" version policy, read from the
repository the way they read it: every folder of the repository is a model (`single_model_name`
serves the repository itself as one model, DEST for an empty model path), every folder of a
model named by digits only is a version, and the newest is the one to serve.

- "tfserving" and "kserve-v2" re-scan the repository every `poll` seconds
  (TF Serving's --file_system_poll_wait_seconds, Triton's --model-control-mode=poll with
  --repository-poll-secs). A new newest version goes LOADING and, `load_delay` seconds later,
  AVAILABLE (or END with an error status when it fails to load). As the availability-preserving
  transition of both servers does, the version it replaces stays AVAILABLE until the new one
  is, then for one scan more (the managers unload it on their next pass; `overlap=False` drops
  that scan), then UNLOADING, then END. A version that fails to load leaves the one before it
  served.
- "triton-explicit" never scans: nothing is loaded until the load request, which loads the
  newest version synchronously (waiting `load_delay`), then unloads the others.

Controls for tests: `broken` (model name, version) pairs fail to load; `require_config` (the
Triton kinds) fails a model folder without config.pbtxt, as Triton without auto-complete does;
`down` answers 503 to everything, as a proxy in front of a server not up yet does.
`requests` logs (method, path). `violations` lists every version that was LOADING, or was the
version served (the newest AVAILABLE), while its folder was gone from disk, checked on every
scan and request and when read: what a sync must never cause. (A superseded version still
AVAILABLE during the overlap was read when it loaded; the servers unload it on their next
pass, and deleting its folder then is what they expect of a repository.)
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

from tests.support.standin import StandInHandler, StandInServer

__all__ = ["KINDS", "ModelServerStandIn", "publish"]

KINDS = ("tfserving", "kserve-v2", "triton-explicit")
READS_FOLDER = ("LOADING", "AVAILABLE")  # the states in which a server reads a version's files
JSON = "application/json"
_DIGITS = re.compile(r"[0-9]+")
_TFS_STATUS = re.compile(r"/v1/models/([^/:]+)(?:/versions/([0-9]+))?")
_V2_READY = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/ready")
_V2_LOAD = re.compile(r"/v2/repository/models/([^/]+)/load")

_Reply = tuple[int, bytes, str]


@dataclass
class _Version:
    number: int
    path: Path
    state: str
    ready_at: float = 0.0
    error: str = ""


@dataclass
class _Model:
    folder: Path
    versions: dict[int, _Version] = field(default_factory=dict)

    def available(self) -> list[_Version]:
        return [v for v in self.versions.values() if v.state == "AVAILABLE"]


def _reply(status: int, doc: object | None = None) -> _Reply:
    return status, b"" if doc is None else json.dumps(doc).encode(), JSON


class ModelServerStandIn(StandInServer):
    """Serves `repository` as a model server of `kind` (one of KINDS)."""

    def __init__(
        self,
        repository: Path,
        kind: str,
        *,
        poll: float | None = 0.1,
        load_delay: float = 0.0,
        single_model_name: str | None = None,
        require_config: bool = False,
        overlap: bool = True,
    ) -> None:
        """`poll=None` scans only when a test calls scan(), for step-by-step checks;
        `overlap=False` unloads a replaced version in the pass its successor loads in."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        super().__init__()
        self.handler = _ModelServerHandler
        self.repository = repository
        self.kind = kind
        self.poll = poll
        self.load_delay = load_delay
        self.single_model_name = single_model_name
        self.require_config = require_config
        self.overlap = overlap
        self.broken: set[tuple[str, int]] = set()
        self.down = False
        self._state = threading.RLock()
        self._models: dict[str, _Model] = {}
        self._requests: list[tuple[str, str]] = []
        self._violations: list[str] = []
        self._halt = threading.Event()
        self._scanner: threading.Thread | None = None

    def start(self) -> Self:
        """Start answering; the poll kinds first load what the repository already holds, as
        the servers do before they open their ports."""
        if self.kind != "triton-explicit":
            self.scan()
        super().start()
        if self.kind != "triton-explicit" and self.poll is not None:
            self._scanner = threading.Thread(
                target=self._scan_forever, name=f"ModelServerStandIn-scan-{self.port}", daemon=True
            )
            self._scanner.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._scanner is not None:
            self._scanner.join(timeout=2)
        super().stop()

    # what tests read

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._state:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        with self._state:
            self._check()
            return list(self._violations)

    def served(self, name: str) -> int | None:
        """The newest version of `name` that is AVAILABLE, as the server would answer."""
        with self._state:
            model = self._models.get(name)
            available = [v.number for v in model.available()] if model else []
            return max(available, default=None)

    def states(self, name: str) -> dict[int, str]:
        """Version -> state for every version of `name` the server has handled."""
        with self._state:
            model = self._models.get(name)
            return {v.number: v.state for v in model.versions.values()} if model else {}

    # the repository, as the servers read it

    def scan(self) -> None:
        """One pass of a poll kind's manager over the repository."""
        with self._state:
            now = time.monotonic()
            found = self._discover()
            for name, folder in found.items():
                self._models.setdefault(name, _Model(folder))
            for name, model in self._models.items():
                self._step(name, model, self._latest(model.folder) if name in found else None, now)
            self._check()

    def _scan_forever(self) -> None:
        assert self.poll is not None
        while not self._halt.wait(self.poll):
            try:
                self.scan()
            except Exception as exc:  # keep polling, as the servers do; the test sees it
                self.errors.append(exc)

    def _discover(self) -> dict[str, Path]:
        if self.single_model_name is not None:
            return {self.single_model_name: self.repository} if self.repository.is_dir() else {}
        try:
            entries = list(self.repository.iterdir())
        except OSError:
            return {}
        return {p.name: p for p in entries if not p.name.startswith(".") and p.is_dir()}

    def _folder(self, name: str) -> Path | None:
        if self.single_model_name is not None:
            return self.repository if name == self.single_model_name else None
        if name.startswith(".") or "/" in name or name in ("", ".."):
            return None
        return self.repository / name

    @staticmethod
    def _latest(folder: Path) -> tuple[int, Path] | None:
        """The newest version folder ("latest 1"), by number, as both servers parse it."""
        try:
            entries = list(folder.iterdir())
        except OSError:
            return None
        versions = [(int(p.name), p) for p in entries if _DIGITS.fullmatch(p.name) and p.is_dir()]
        return max(versions, default=None, key=lambda item: item[0])

    def _load_error(self, name: str, model: _Model, version: _Version) -> str:
        """Why loading this version fails, in the server's words; "" when it loads."""
        if self.kind != "tfserving" and self.require_config:
            config = model.folder / "config.pbtxt"
            if not config.is_file():
                return f"failed to open text file for read {config}: No such file or directory"
        if not version.path.is_dir():
            files = "{saved_model.pbtxt|saved_model.pb}"
            return f"SavedModel file does not exist at: {version.path}/{files}"
        if (name, version.number) in self.broken:
            return f"Data loss: Can't parse {version.path}/saved_model.pb as binary proto"
        return ""

    def _step(self, name: str, model: _Model, latest: tuple[int, Path] | None, now: float) -> None:
        """One manager pass over one model, as the availability-preserving policy orders it:
        what was unloading ends, the newest version starts loading, loads complete, and the
        versions it replaces are unloaded once it is available (with `overlap`, once it was
        already available when the pass began)."""
        aspired = latest[0] if latest else None
        was_available = {v.number for v in model.available()}
        for version in model.versions.values():
            if version.state == "UNLOADING":
                version.state = "END"
        if latest is not None:
            number, path = latest
            current = model.versions.get(number)
            if current is None or (current.state == "END" and not current.error):
                model.versions[number] = _Version(number, path, "LOADING", now + self.load_delay)
        for version in model.versions.values():
            if version.state == "LOADING" and now >= version.ready_at:
                version.error = self._load_error(name, model, version)
                version.state = "END" if version.error else "AVAILABLE"
        available = was_available if self.overlap else {v.number for v in model.available()}
        replaced = sorted(v.number for v in model.available() if v.number != aspired)
        if aspired is not None and aspired not in available:
            replaced = replaced[:-1]  # keep serving the newest until its successor is up
        for number in replaced:
            model.versions[number].state = "UNLOADING"

    def _check(self) -> None:
        for name, model in self._models.items():
            newest = max((v.number for v in model.available()), default=None)
            for version in model.versions.values():
                # A superseded version still AVAILABLE for the overlap is in memory, about to
                # be unloaded: its files were read when it loaded. The one served, and one
                # loading, still read theirs.
                reading = version.state == "LOADING" or version.number == newest
                if reading and version.state in READS_FOLDER and not version.path.is_dir():
                    text = f"{name} version {version.number} is {version.state}"
                    text += f" but {version.path} is gone"
                    if text not in self._violations:
                        self._violations.append(text)

    # the protocols

    def answer(self, method: str, path: str, body: bytes) -> _Reply:
        with self._state:
            self._requests.append((method, path))
            self._check()
        if self.down:
            return 503, b"no healthy upstream", "text/plain"
        if self.kind == "tfserving":
            return self._tfserving(method, path)
        ready = _V2_READY.fullmatch(path)
        if ready:
            if method != "GET":
                return _reply(405, {"error": "Method Not Allowed"})
            return self._v2_ready(unquote(ready[1]), ready[2])
        load = _V2_LOAD.fullmatch(path)
        if load:
            if method != "POST":
                return _reply(405, {"error": "Method Not Allowed"})
            return self._triton_load(unquote(load[1]), body)
        return _reply(404, {"error": "Not Found"})

    def _tfserving(self, method: str, path: str) -> _Reply:
        if not path.startswith("/v1/"):
            return 404, b"", "text/plain"
        status = _TFS_STATUS.fullmatch(path)
        if method != "GET" or not status:
            return _reply(400, {"error": f"Malformed request: {method} {path}"})
        name = unquote(status[1])
        with self._state:
            model = self._models.get(name)
            versions = sorted(model.versions.values(), key=lambda v: -v.number) if model else []
            if status[2] is not None:
                wanted = int(status[2])
                versions = [v for v in versions if v.number == wanted]
                if not versions:
                    return _reply(
                        404, {"error": f"Could not find version {wanted} of model {name}"}
                    )
            if not versions:
                return _reply(404, {"error": f"Could not find any versions of model {name}"})
            entries = [
                {
                    "version": str(v.number),
                    "state": v.state,
                    "status": {
                        "error_code": "UNKNOWN" if v.error else "OK",
                        "error_message": v.error,
                    },
                }
                for v in versions
            ]
        return _reply(200, {"model_version_status": entries})

    def _v2_ready(self, name: str, version: str | None) -> _Reply:
        if version is not None and not _DIGITS.fullmatch(version):
            return _reply(
                400,
                {
                    "error": f"failed to get model version from specified version string "
                    f"'{version}' (details: stoll), version should be an integral value > 0"
                },
            )
        with self._state:
            model = self._models.get(name)
            available = {v.number for v in model.available()} if model else set()
        ready = bool(available) if version is None else int(version) in available
        return _reply(200) if ready else _reply(400, {"error": "Model version not ready"})

    def _triton_load(self, name: str, body: bytes) -> _Reply:
        if self.kind != "triton-explicit":
            return _reply(
                503, {"error": "explicit model load / unload is not allowed if polling is enabled"}
            )
        if body.strip():
            try:
                request = json.loads(body)
            except ValueError as exc:
                return _reply(400, {"error": f"failed to parse the request JSON buffer: {exc}"})
            if not isinstance(request, dict):
                return _reply(400, {"error": "the request body must be a JSON object"})
        folder = self._folder(name)
        cannot_poll = {"error": f"failed to load '{name}', failed to poll from model repository"}
        if folder is None or not folder.is_dir():
            return _reply(400, cannot_poll)
        if self.require_config and not (folder / "config.pbtxt").is_file():
            return _reply(400, cannot_poll)
        latest = self._latest(folder)
        if latest is None:
            return _reply(400, {"error": f"failed to load '{name}', no version is available"})
        with self._state:
            model = self._models.setdefault(name, _Model(folder))
            version = model.versions.get(latest[0])
            if version is None or version.state != "AVAILABLE":  # loaded and unchanged: kept
                version = model.versions[latest[0]] = _Version(latest[0], latest[1], "LOADING")
                delay = self.load_delay
            else:
                delay = 0.0
        time.sleep(delay)
        with self._state:
            version.error = self._load_error(name, model, version)
            if version.error:
                version.state = "END"
                missing = f"versions that are not available: {version.number}"
                return _reply(400, {"error": f"failed to load '{name}', {missing}"})
            version.state = "AVAILABLE"
            for other in model.available():
                if other is not version:
                    other.state = "END"
        return _reply(200)


class _ModelServerHandler(StandInHandler):
    def do_GET(self) -> None:
        standin = self.server.standin
        assert isinstance(standin, ModelServerStandIn)
        body = self.read_body()
        status, data, ctype = standin.answer(self.command, urlsplit(self.path).path, body)
        self.answer(status, data, ctype)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET


def publish(repo: Path, model: str, version: int, config: bool = False) -> Path:
    """A version folder as a sync publishes it (and, with `config`, a Triton config.pbtxt)."""
    folder = repo / model / str(version)
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    if config:
        (repo / model / "config.pbtxt").write_text(f'name: "{model}"\n')
    return folder
