"""The Writer with Members: archive members left out are read past, pickles refused."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest

from gcs_model_sync.errors import VersionRejected
from gcs_model_sync.formats import zipformat, zipstream
from gcs_model_sync.formats.extract import Limits, Writer
from gcs_model_sync.formats.members import Members
from gcs_model_sync.formats.tarstream import extract as extract_tar


def no_checkpoints(rel: str) -> bool:
    return not rel.startswith("ckpt/")


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def a_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ckpt/", b"")
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def a_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("again")  # a hard link to a member left out: left out too
        link.type, link.linkname = tarfile.LNKTYPE, "ckpt/a"
        tf.addfile(link)
    return buf.getvalue()


MEMBERS = {"model.onnx": b"onnx" * 100, "ckpt/a": b"c" * 5000, "ckpt/b": b"d"}


def writer(tmp_path: Path, members: Members) -> Writer:
    return Writer(tmp_path / "tree", Limits(10**6, "gs://b/m/1.zip"), members)


def test_members_left_out_are_never_written_whatever_the_format(tmp_path: Path) -> None:
    keep = Members(no_checkpoints, refuse_pickle=False)
    w = writer(tmp_path / "zs", keep)
    zipstream.extract(io.BytesIO(a_zip(MEMBERS)), w, "z")  # CRCs still checked: read past
    assert files(w.root) == {"model.onnx": MEMBERS["model.onnx"]}
    assert not (w.root / "ckpt").exists()
    (tmp_path / "z.zip").write_bytes(a_zip(MEMBERS))
    w = writer(tmp_path / "zf", keep)
    zipformat.extract_zip(tmp_path / "z.zip", w, "z")
    assert files(w.root) == {"model.onnx": MEMBERS["model.onnx"]}
    w = writer(tmp_path / "t", keep)
    extract_tar(io.BytesIO(a_tar(MEMBERS)), w, "t")
    assert files(w.root) == {"model.onnx": MEMBERS["model.onnx"]}


def test_a_pickle_member_is_refused_by_name_or_by_bytes(tmp_path: Path) -> None:
    refuse = Members(None, refuse_pickle=True)
    for name, data in [("tok.pkl", b"x"), ("w.bin", pickle.dumps([1], protocol=4))]:
        w = writer(tmp_path / name, refuse)
        with pytest.raises(VersionRejected, match=f"gs://b/m/1.zip: {name} .*--refuse-pickle"):
            zipstream.extract(io.BytesIO(a_zip({name: data})), w, "z")


def test_a_bin_that_is_no_pickle_is_written_whole(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40  # longer than the head read to judge it
    w = writer(tmp_path, Members(None, refuse_pickle=True))
    extract_tar(io.BytesIO(a_tar({"model.bin": data, "ckpt/a": b"a"})), w, "t")
    assert files(w.root)["model.bin"] == data


def test_a_downloaded_file_moved_in_is_checked_too(tmp_path: Path) -> None:
    done = tmp_path / "partial"
    done.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    w = writer(tmp_path, Members(None, refuse_pickle=True))
    with pytest.raises(VersionRejected, match=r"weights\.bin holds a pickle"):
        w.adopt("weights.bin", done)
