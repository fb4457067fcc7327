"""`--include`/`--exclude` and `--refuse-pickle`, through the real CLI against the emulator."""

from __future__ import annotations

import io
import pickle
import zipfile

from tests.e2e.conftest import Sync
from tests.support.faultproxy import FaultProxy
from tests.support.models import make_tar, sample_files

ONNX = b"onnx-model-bytes"
OPENVINO_XML = b'<?xml version="1.0"?>\n<net name="m" version="11"></net>\n'


def torch_zip() -> bytes:
    """What torch.save writes since 1.6: a zip whose first member is archive/data.pkl."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}, protocol=2))
        zf.writestr("archive/data/0", b"\x00" * 16)
    return buf.getvalue()


def test_an_excluded_model_is_not_installed_and_its_installed_versions_are_left_alone(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("r1"))
    b.put_zip(sync.key("legacy/1.zip"), sample_files("l1"))
    assert sync.once().returncode == 0
    b.put_zip(sync.key("legacy/2.zip"), sample_files("l2"))
    b.delete(sync.key("legacy/1.zip"))

    plan = sync.run("plan", "--exclude", "legacy/")
    assert plan.returncode == 0, plan.stderr
    assert "excluded" in plan.stdout
    assert "legacy" in plan.stdout
    result = sync.once("--exclude", "legacy/")

    assert result.returncode == 0, result.stderr
    assert sync.versions("legacy") == ["1"]  # not pruned as "removed from the bucket"
    assert sync.versions("resnet") == ["1"]
    again = sync.once("--exclude", "legacy/")
    assert again.returncode == 0, again.stderr
    assert sync.versions("legacy") == ["1"]  # still ours: pruned once the filter goes
    assert sync.once().returncode == 0
    assert sync.versions("legacy") == ["2"]


def test_excluded_files_of_a_folder_version_are_never_downloaded(
    proxied: Sync, proxy: FaultProxy
) -> None:
    b = proxied.bucket
    b.put_folder(
        proxied.key("resnet/1"),
        {"model.onnx": ONNX, "checkpoints/ckpt-1": b"ckpt", "notes.md": b"notes"},
    )
    flags = ("--exclude", "checkpoints/", "--exclude", "*.md")

    result = proxied.once(*flags)

    assert result.returncode == 0, result.stderr
    assert proxied.version("resnet/1") == {"model.onnx": ONNX}
    # model.onnx is read twice: once for the external data files it names, once installed.
    downloaded = {r.name for r in proxy.records if r.kind == "download"}
    assert downloaded == {proxied.key("resnet/1/model.onnx")}
    # A change only to an excluded file leaves the version in sync: nothing is read.
    b.put(proxied.key("resnet/1/notes.md"), b"edited notes")
    proxy.reset_counts()
    again = proxied.once(*flags)
    assert again.returncode == 0, again.stderr
    assert proxy.counts["download"] == 0
    assert proxied.version("resnet/1") == {"model.onnx": ONNX}


def test_excluded_members_of_an_archive_are_not_extracted(sync: Sync) -> None:
    files = {"model.onnx": ONNX, "checkpoints/ckpt-1": b"ckpt", "README.md": b"readme"}
    sync.bucket.put_zip(sync.key("resnet/1.zip"), files, top="1")
    sync.bucket.put(sync.key("bert/3.tar.gz"), make_tar(files, gz=True))

    result = sync.once("--exclude", "checkpoints/", "--exclude", "/*/*/README.md")

    assert result.returncode == 0, result.stderr
    assert sync.version("resnet/1") == {"model.onnx": ONNX}
    assert sync.version("bert/3") == {"model.onnx": ONNX}


def test_include_keeps_only_the_models_and_files_that_match(sync: Sync) -> None:
    b = sync.bucket
    b.put_folder(sync.key("prod/resnet/1"), {"model.onnx": ONNX, "train.log": b"log"})
    b.put_folder(sync.key("dev/resnet/1"), {"model.onnx": ONNX})

    result = sync.once("--include", "/prod/**.onnx")

    assert result.returncode == 0, result.stderr
    assert sync.version("prod/resnet/1") == {"model.onnx": ONNX}
    assert not (sync.dest / "dev").exists()


def test_the_filters_are_read_from_space_separated_variables(sync: Sync) -> None:
    sync.bucket.put_folder(sync.key("m/1"), {"model.onnx": ONNX, "a.md": b"a", "b.txt": b"b"})

    result = sync.once(env={"GCS_MODEL_SYNC_EXCLUDE": "*.md *.txt"})

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == {"model.onnx": ONNX}


def test_plan_shows_what_the_filters_decide(sync: Sync) -> None:
    b = sync.bucket
    b.put_folder(sync.key("resnet/1"), {"model.onnx": ONNX, "notes.md": b"n", "x.md": b"x"})
    b.put_zip(sync.key("legacy/4.zip"), sample_files("l"))

    plan = sync.run("plan", "--exclude", "*.md", "--exclude", "/legacy/")

    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert any("legacy" in line and "excluded" in line for line in lines), plan.stdout
    assert any("resnet/1" in line and "2 file(s) excluded" in line for line in lines), plan.stdout


def test_a_bad_pattern_is_a_one_line_usage_error(sync: Sync) -> None:
    for bad in ("[abc", "{a,b", "{{.*}}", ""):
        result = sync.run("plan", "--include", bad)
        assert result.returncode == 2, (bad, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("gcs-model-sync: error: --include"), line


def test_refuse_pickle_rejects_a_version_with_a_pickle_and_installs_the_rest(sync: Sync) -> None:
    b = sync.bucket
    b.put_folder(sync.key("a/1"), {"model.onnx": ONNX})
    assert sync.once("--refuse-pickle").returncode == 0
    b.put_folder(sync.key("a/2"), {"model.onnx": ONNX, "tokenizer.pkl": pickle.dumps([1])})
    b.put_zip(sync.key("torch/5.zip"), {"pytorch_model.bin": torch_zip()})
    b.put_folder(sync.key("raw/1"), {"weights.bin": pickle.dumps({"w": 1}, protocol=4)})
    b.put_folder(sync.key("vino/1"), {"model.xml": OPENVINO_XML, "model.bin": b"\x00" * 64})
    b.put_zip(sync.key("onnx/1.zip"), {"model.onnx": ONNX})

    plan = sync.run("plan", "--refuse-pickle")
    assert plan.returncode == 1, plan.stderr
    assert "a/2/tokenizer.pkl" in plan.stdout
    result = sync.once("--refuse-pickle")

    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "pickle" in line]
    assert any(sync.key("a/2/tokenizer.pkl") in line for line in errors), result.stderr
    assert any("torch/5.zip" in line and "pytorch_model.bin" in line for line in errors)
    assert any(sync.key("raw/1") in line and "weights.bin" in line for line in errors)
    assert sync.versions("a") == ["1"]  # the published version stays
    assert sync.versions("torch") == []
    assert sync.versions("raw") == []
    assert sync.version("vino/1") == {"model.xml": OPENVINO_XML, "model.bin": b"\x00" * 64}
    assert sync.version("onnx/1") == {"model.onnx": ONNX}
    # Off by default: the same bucket installs whole.
    assert sync.once().returncode == 0
    assert sync.versions("a") == ["1", "2"]
    assert sync.versions("torch") == ["5"]
