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

- TF Serving with `--model_config_file` (`config_file`), "How to Configure a Model Server"
  (https://www.tensorflow.org/tfx/serving/serving_config) and ModelServerConfig
  (tensorflow_serving/config/model_server_config.proto, file_system_storage_path_source.proto):
  the models are the file's `model_config_list { config { name base_path model_platform
  model_version_policy version_labels } }`, not the repository's folders, re-read on every
  scan (`--model_config_file_poll_wait_seconds`). `model_version_policy` is `latest
  { num_versions }` (the default, 1), `all {}` or `specific { versions: ... }`: the versions
  aspired to are those of the policy that have a folder. `version_labels { key value }` map a
  label to a version, answered at `GET /v1/models/<name>/labels/<label>`. "Labels can only be
  assigned to model versions that are already loaded and available for serving" (without
  `--allow_version_labels_for_unavailable_models`): a label to any other version is refused
  with "Request to assign label to version <v> of model <name>, which is not currently
  available for inference" (server_core.cc), recorded in `config_errors`; the labels stay as
  they were, and the next scan tries again. A file that does not parse is refused the same
  way, and everything stays as it was.

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
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from tests.support.standin import StandInHandler, StandInServer
from tests.support.textformat import parse

__all__ = ["KINDS", "ModelServerStandIn", "publish"]

KINDS = ("tfserving", "kserve-v2", "triton-explicit")
READS_FOLDER = ("LOADING", "AVAILABLE")  # the states in which a server reads a version's files
JSON = "application/json"
_DIGITS = re.compile(r"[0-9]+")
_TFS_STATUS = re.compile(r"/v1/models/([^/:]+)(?:/versions/([0-9]+)|/labels/([^/:]+))?")
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
        config_file: Path | None = None,
    ) -> None:
        """`poll=None` scans only when a test calls scan(), for step-by-step checks;
        `overlap=False` unloads a replaced version in the pass its successor loads in;
        `config_file` (TF Serving only): serve the models a model_config_list file names."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if config_file is not None and kind != "tfserving":
            raise ValueError("config_file is TF Serving's --model_config_file")
        super().__init__()
        self.handler = _ModelServerHandler
        self.repository = repository
        self.kind = kind
        self.poll = poll
        self.load_delay = load_delay
        self.single_model_name = single_model_name
        self.require_config = require_config
        self.overlap = overlap
        self.config_file = config_file
        self.config_errors: list[str] = []
        self._policies: dict[str, dict[str, Any]] = {}  # name -> its ModelConfig, as parsed
        self._labels: dict[str, dict[str, int]] = {}
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

    def labelled(self, name: str, label: str) -> int | None:
        """The version `label` names for `name`, as the server holds its labels."""
        with self._state:
            return self._labels.get(name, {}).get(label)

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
            if self.config_file is not None:
                self._read_config()
            found = self._discover()
            for name, folder in found.items():
                self._models.setdefault(name, _Model(folder))
            for name, model in self._models.items():
                self._step(name, model, self._aspired(name, model) if name in found else {}, now)
            if self.config_file is not None:
                self._assign_labels()
            self._check()

    def _scan_forever(self) -> None:
        assert self.poll is not None
        while not self._halt.wait(self.poll):
            try:
                self.scan()
            except Exception as exc:  # keep polling, as the servers do; the test sees it
                self.errors.append(exc)

    def _discover(self) -> dict[str, Path]:
        if self.config_file is not None:
            return {name: Path(c["base_path"][0]) for name, c in self._policies.items()}
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

    def _aspired(self, name: str, model: _Model) -> dict[int, Path]:
        """The versions the model's policy aspires to, of those with a folder."""
        try:
            entries = list(model.folder.iterdir())
        except OSError:
            return {}
        found = {int(p.name): p for p in entries if _DIGITS.fullmatch(p.name) and p.is_dir()}
        policy = (self._policies.get(name, {}).get("model_version_policy") or [{}])[0]
        if "all" in policy:
            return found
        if "specific" in policy:
            wanted = {int(v) for v in policy["specific"][0].get("versions", [])}
            return {n: p for n, p in found.items() if n in wanted}
        latest = (policy.get("latest") or [{}])[0]
        count = int((latest.get("num_versions") or [1])[0])
        return {n: found[n] for n in sorted(found)[-count:]}

    def _read_config(self) -> None:
        """The model config file, re-read each scan; one that does not parse changes nothing."""
        assert self.config_file is not None
        try:
            doc = parse(self.config_file.read_text())
            configs = doc["model_config_list"][0].get("config", [])
            policies = {c["name"][0]: c for c in configs}
        except (OSError, KeyError, IndexError, ValueError) as exc:
            self._refuse(f"cannot read {self.config_file}: {exc!r}")
            return
        self._policies = policies

    def _assign_labels(self) -> None:
        """Each model's labels, as the file says, once every version they name is AVAILABLE."""
        for name, config in self._policies.items():
            labels = {e["key"][0]: int(e["value"][0]) for e in config.get("version_labels", [])}
            model = self._models.get(name)
            available = {v.number for v in model.available()} if model else set()
            missing = sorted(v for v in labels.values() if v not in available)
            if missing:
                self._refuse(
                    f"Request to assign label to version {missing[0]} of model {name}, which "
                    "is not currently available for inference"
                )
                continue
            self._labels[name] = labels

    def _refuse(self, message: str) -> None:
        if message not in self.config_errors:
            self.config_errors.append(message)

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

    def _step(self, name: str, model: _Model, aspired: dict[int, Path], now: float) -> None:
        """One manager pass over one model, as the availability-preserving policy orders it:
        what was unloading ends, the versions aspired to start loading, loads complete, and
        the versions they replace are unloaded once they are available (with `overlap`, once
        they were already available when the pass began)."""
        was_available = {v.number for v in model.available()}
        for version in model.versions.values():
            if version.state == "UNLOADING":
                version.state = "END"
        for number, path in aspired.items():
            current = model.versions.get(number)
            if current is None or (current.state == "END" and not current.error):
                model.versions[number] = _Version(number, path, "LOADING", now + self.load_delay)
        for version in model.versions.values():
            if version.state == "LOADING" and now >= version.ready_at:
                version.error = self._load_error(name, model, version)
                version.state = "END" if version.error else "AVAILABLE"
        available = was_available if self.overlap else {v.number for v in model.available()}
        replaced = sorted(v.number for v in model.available() if v.number not in aspired)
        if any(n not in available for n in aspired):
            replaced = replaced[:-1]  # keep serving the newest until its successors are up
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
            label = unquote(status[3]) if status[3] is not None else None
            if label is not None and label not in self._labels.get(name, {}):
                return _reply(404, {"error": f"Unrecognized servable version label: {label}"})
            if status[2] is not None or label is not None:
                wanted = int(status[2]) if label is None else self._labels[name][label]
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
