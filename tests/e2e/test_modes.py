"""Installed versions are readable by a model server running as another user, whatever the
umask of the sync process."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

from tests.e2e.conftest import Sync
from tests.support.cli import cli_env, command
from tests.support.models import sample_files

FILE, EXE, DIR = "-rw-r--r--", "-rwxr-xr-x", "drwxr-xr-x"


def zip_with_an_executable(files: dict[str, bytes], top: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", b"")
        for name, data in files.items():
            info = zipfile.ZipInfo(f"{top}/{name}")
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | (0o755 if name.endswith(".sh") else 0o600)) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def tgz_with_private_modes(files: dict[str, bytes]) -> bytes:
    """Members as a umask-077 tar would record them: folders 0700, files 0600, a 0700 tool."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        folder = tarfile.TarInfo("variables")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o700
        tf.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o700 if name.endswith(".sh") else 0o600
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def modes(root: Path) -> dict[str, str]:
    """`ls -l` modes of the version folder (".") and of everything in it."""
    out = {".": stat.filemode(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.filemode(p.lstat().st_mode)
    return out


def test_installed_files_are_readable_by_another_user_under_umask_077(sync: Sync) -> None:
    with_tool = {**sample_files("a"), "bin/serve.sh": b"#!/bin/sh\n"}
    sync.bucket.put(sync.key("m/1.zip"), zip_with_an_executable(with_tool, top="1"))
    sync.bucket.put(sync.key("m/2.tar.gz"), tgz_with_private_modes(with_tool))
    sync.bucket.put_folder(sync.key("m/3"), sample_files("c"))

    result = subprocess.run(
        command(*sync.args("once", "--retry-deadline", "20")),
        env=cli_env(sync.endpoint),  # folder versions publish at once: --settle 0
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o077,
    )

    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["1", "2", "3"]
    saved_model = {
        ".": DIR,
        "saved_model.pb": FILE,
        "variables": DIR,
        "variables/variables.index": FILE,
        "variables/variables.data-00000-of-00001": FILE,
    }
    with_exe = {**saved_model, "bin": DIR, "bin/serve.sh": EXE}
    assert modes(sync.dest / "m" / "1") == with_exe  # the zip's lone top folder
    assert modes(sync.dest / "m" / "2") == with_exe  # the archive root
    assert modes(sync.dest / "m" / "3") == saved_model
    # the way in: DEST and the model folder, created by the sync, are open to others too
    assert stat.filemode(sync.dest.stat().st_mode) == DIR
    assert stat.filemode((sync.dest / "m").stat().st_mode) == DIR
