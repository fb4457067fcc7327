"""TensorFlow Serving `model_config_list` file for `--tfs-config`: render it, write it atomically.

TF Serving polls the file (`--model_config_file_poll_wait_seconds`) and reloads it when it
changes, so it must never see a half-written file, and an unchanged pass must not rewrite it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from gcs_model_sync.errors import SyncError
from gcs_model_sync.local import safepath
from gcs_model_sync.local.durability import atomic_write
from gcs_model_sync.plan.pins import Serving

__all__ = ["NAME_SEPARATOR", "model_name", "models_for", "render", "write_if_changed"]

# Nested model paths ("team/resnet") become "team_resnet": TF Serving's REST API routes
# /v1/models/<name>, so a name cannot hold "/". The join is not injective ("a_b/c" and
# "a/b_c" collide); `models_for` refuses such a pair instead of silently serving one of them.
NAME_SEPARATOR = "_"
FILE_MODE = 0o644  # TF Serving may run as another user than the sync container

_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def model_name(model_path: str) -> str:
    """A model path relative to DEST ('team/resnet') -> its TF Serving name ('team_resnet').

    The empty path (the prefix points at one model) has no name of its own: callers pass the
    DEST folder's basename instead, as `models_for` does.
    """
    parts = model_path.strip("/").split("/")
    if not all(parts):
        raise ValueError(f"not a model path: {model_path!r}")
    return NAME_SEPARATOR.join(parts)


def models_for(dest: Path, model_paths: Iterable[str]) -> dict[str, Path]:
    """TF Serving name -> absolute base path for every model under DEST; refuses name clashes."""
    root = Path(os.path.abspath(dest))
    models: dict[str, Path] = {}
    sources: dict[str, str] = {}
    for path in sorted(set(model_paths)):
        name = model_name(path) if path else model_name(root.name)
        if name in models:
            raise SyncError(
                f"models {sources[name]!r} and {path!r} would both be served as {name!r}"
            )
        models[name] = root / path if path else root
        sources[name] = path
    return models


def _quote(value: str) -> str:
    """A text-format string literal; other control characters become octal escapes."""
    out = []
    for ch in value:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)  # printable ASCII and non-ASCII: written as UTF-8, as protobuf reads it
    return '"' + "".join(out) + '"'


def render(models: Mapping[str, Path], serving: Mapping[str, Serving] | None = None) -> str:
    """Model name -> absolute base path, as a text-format ModelServerConfig sorted by name;
    a model in `serving` gets a `specific` version policy and its version labels
    (model_server_config.proto: ModelConfig.model_version_policy, .version_labels)."""
    lines = ["model_config_list {"]
    for name in sorted(models):
        base = models[name]
        if not name:
            raise ValueError("a TF Serving model name cannot be empty")
        if not base.is_absolute():
            raise ValueError(f"base path of {name!r} must be absolute, got {str(base)!r}")
        lines += [
            "  config {",
            f"    name: {_quote(name)}",
            f"    base_path: {_quote(str(base))}",
            '    model_platform: "tensorflow"',
        ]
        if (told := (serving or {}).get(name)) is not None:
            lines += _policy(told)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _policy(told: Serving) -> list[str]:
    lines = ["    model_version_policy {", "      specific {"]
    lines += [f"        versions: {v}" for v in told.versions]
    lines += ["      }", "    }"]
    for label, version in told.labels.items():
        lines += ["    version_labels {", f"      key: {_quote(label)}", f"      value: {version}"]
        lines.append("    }")
    return lines


def write_if_changed(path: Path, text: str, dest: Path | None = None) -> bool:
    """Atomic (temp file in the same dir, fsync, os.replace, fsync dir); True when it wrote.
    A file below `dest` is never written through a symbolic link folder between the two
    (LinkRefused); a link in its own place is replaced, not followed."""
    data = text.encode("utf-8")
    if dest is not None:
        where, root = Path(os.path.abspath(path)), Path(os.path.abspath(dest))
        if where.is_relative_to(root):
            safepath.check_parent(root, where)
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == data:
            return False
    atomic_write(path, data, FILE_MODE)
    return True
