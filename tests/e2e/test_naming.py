"""How names in the bucket become version folders on disk: what an archive's top folder
means, one number spelled two ways, and numbers no model server can read."""

from __future__ import annotations

import json

from tests.e2e.conftest import Sync
from tests.e2e.test_errors import assert_one_line
from tests.support.models import sample_files

SAVEDMODEL = sample_files("tf")
ONNX = {"model.onnx/model.onnx": b"onnx graph", "model.onnx/weights.bin": b"w" * 64}
TOO_BIG = "99999999999999999999"  # more than int64, which is how TF Serving reads a version


def under(top: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{top}/{name}": data for name, data in files.items()}


# --- an archive's top folder, a folder form's folders ------------------------------------------


def test_folder_version_whose_only_child_is_a_model_folder_keeps_it(sync: Sync) -> None:
    """Triton's TensorFlow layout: m/1/model.savedmodel/… is the version's content as is."""
    sync.bucket.put_folder(sync.key("m/1"), under("model.savedmodel", SAVEDMODEL))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == under("model.savedmodel", SAVEDMODEL)


def test_zip_holding_only_a_model_folder_keeps_it(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), ONNX)
    sync.bucket.put_tar(sync.key("m/2.tar.gz"), under("variables", {"a": b"1"}), gz=True)

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == ONNX
    assert sync.version("m/2") == {"variables/a": b"1"}


def test_top_folder_named_like_the_version_is_the_version(sync: Sync) -> None:
    """The seed's `0002/` inside `0002.zip`, `7/` inside `7.tar.gz`, `2/` inside `0003.zip`
    is no version's name (kept), `3/` inside `0003.tar` is the same number (stripped)."""
    sync.bucket.put_zip(sync.key("m/0002.zip"), SAVEDMODEL, top="0002")
    sync.bucket.put_tar(sync.key("m/7.tar.gz"), SAVEDMODEL, top="7", gz=True)
    sync.bucket.put_tar(sync.key("n/0003.tar"), SAVEDMODEL, top="3")
    sync.bucket.put_zip(sync.key("n/0004.zip"), SAVEDMODEL, top="2")

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("m/0002") == SAVEDMODEL
    assert sync.version("m/7") == SAVEDMODEL
    assert sync.version("n/0003") == SAVEDMODEL
    assert sync.version("n/0004") == under("2", SAVEDMODEL)


# --- one number, two spellings ---------------------------------------------------------------


def test_local_folder_and_bucket_version_of_one_number_are_one_error_and_nothing_changes(
    sync: Sync,
) -> None:
    """DEST/m/0003 beside gs://…/m/3.zip: TF Serving reads both as 3. m gets one line naming
    both, nothing of m is installed or deleted; n goes on; plan and status show it."""
    (sync.dest / "m" / "0003").mkdir(parents=True)
    (sync.dest / "m" / "0003" / "saved_model.pb").write_bytes(b"hand-made")
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/4.zip"), sample_files("b"))
    sync.bucket.put_zip(sync.key("n/1.zip"), sample_files("c"))

    plan = sync.run("plan")
    result = sync.once()
    status = sync.run("status", "--log-format", "json")

    line = assert_one_line(result, 1, str(sync.dest / "m" / "0003"), "m/3.zip")
    assert "3" in line
    assert sync.versions("m") == ["0003"]
    assert (sync.dest / "m" / "0003" / "saved_model.pb").read_bytes() == b"hand-made"
    assert sync.versions("n") == ["1"]
    assert plan.returncode == 1
    rows = {tuple(row.split()[:2]) for row in plan.stdout.splitlines()[1:-1]}
    assert ("reject", "m/3") in rows
    assert ("hold", "m/4") in rows
    assert ("fetch", "m/4") not in rows
    models = {m["model"]: m for m in json.loads(status.stdout)["models"]}
    assert models["m"]["in_sync"] is False
    assert models["m"]["bucket"] == ["3", "4"]
    assert models["m"]["local"] == ["0003"]
    assert models["n"]["in_sync"] is True


def test_installed_version_reuploaded_under_another_spelling_is_an_error_until_one_is_picked(
    sync: Sync,
) -> None:
    """We installed m/0003 from 0003.zip; the bucket now spells it 3.zip. Installing 3 beside
    0003 would serve either; pruning 0003 first would drop the served version. The user picks
    one spelling: until then the installed folder stays as it is."""
    sync.bucket.put_zip(sync.key("m/0003.zip"), sample_files("old"))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/0003.zip"))
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("new"))

    result = sync.once()

    assert_one_line(result, 1, str(sync.dest / "m" / "0003"), "m/3.zip")
    assert sync.versions("m") == ["0003"]
    assert sync.version("m/0003") == sample_files("old")

    (sync.dest / "m" / "0003").rename(sync.dest / "elsewhere")  # the user picks `3`
    result = sync.once()
    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["3"]
    assert sync.version("m/3") == sample_files("new")


def test_two_local_folders_of_one_number_are_one_error(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    (sync.dest / "m" / "03").mkdir()

    result = sync.once()

    assert_one_line(result, 1, str(sync.dest / "m" / "03"), str(sync.dest / "m" / "3"))
    assert sync.versions("m") == ["03", "3"]


# --- numbers beyond int64 --------------------------------------------------------------------


def test_version_number_beyond_int64_is_rejected_and_never_outranks_a_real_one(
    sync: Sync,
) -> None:
    sync.bucket.put_zip(sync.key("m/5.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key(f"m/{TOO_BIG}.zip"), sample_files("b"))
    sync.bucket.put_folder(sync.key(f"n/{TOO_BIG}"), sample_files("c"))
    sync.bucket.put_zip(sync.key("n/1.zip"), sample_files("d"))

    result = sync.once("--keep", "1")

    assert_one_line(result, 1, f"m/{TOO_BIG}.zip")
    assert_one_line(result, 1, f"n/{TOO_BIG}/")
    assert sync.versions("m") == ["5"]
    assert sync.version("m/5") == sample_files("a")
    assert sync.versions("n") == ["1"]


def test_local_folder_beyond_int64_is_no_version_and_left_alone(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/5.zip"), sample_files("a"))
    (sync.dest / "m" / TOO_BIG).mkdir(parents=True)

    result = sync.once("--keep", "1")
    status = sync.run("status", "--log-format", "json")

    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["5", TOO_BIG]
    [m] = json.loads(status.stdout)["models"]
    assert m["local"] == ["5"]
    assert m["in_sync"] is True
