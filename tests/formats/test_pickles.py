"""--refuse-pickle: which names and which first bytes are pickles."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest

from gcs_model_sync.formats import pickles


def zipped(first: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(first, pickle.dumps(1, protocol=2))
        zf.writestr("archive/data/0", b"\x00" * 8)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["a.pkl", "m/tok.pickle", "model.PT", "w.pth"])
def test_pickle_formats_are_refused_by_name(name: str) -> None:
    assert pickles.named(name)
    assert not pickles.sniffed(name)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_a_raw_pickle_is_known_by_its_first_bytes(protocol: int) -> None:
    assert pickles.pickled(pickle.dumps({"w": [1, 2]}, protocol=protocol)[: pickles.HEAD])


def test_torch_zip_is_a_pickle_and_another_zip_is_not() -> None:
    assert pickles.pickled(zipped("archive/data.pkl")[: pickles.HEAD])
    assert pickles.pickled(zipped("data.pkl")[: pickles.HEAD])
    assert not pickles.pickled(zipped("archive/weights.npy")[: pickles.HEAD])


@pytest.mark.parametrize(
    "head",
    [
        b"\x00" * 64,  # OpenVINO IR weights, raw tensors
        b"\x08\x07\x12\x04",  # a protobuf (ONNX external data is raw bytes, too)
        b"\x80\x09junk",  # no pickle protocol
        b"\x80",
        b"PK\x03\x04short",
        b"",
    ],
)
def test_other_bin_files_pass(head: bytes) -> None:
    assert pickles.sniffed("model.bin")
    assert not pickles.pickled(head)
