"""`--model-files`: files beside the versions (Triton's config.pbtxt), through the real CLI."""

from __future__ import annotations

import json

from tests.e2e.conftest import Sync
from tests.support.models import sample_files

CONFIG = b'name: "resnet"\nbackend: "onnxruntime"\n'


def events(stderr: str, name: str) -> list[dict[str, object]]:
    """The JSON log records of one event."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == name:
                out.append(record)
    return out


def test_model_files_are_mirrored_beside_the_versions_and_ignored_without_the_option(
    sync: Sync,
) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), CONFIG)
    b.put(sync.key("resnet/labels.txt"), b"cat\ndog\n")
    b.put(sync.key("README.md"), b"the prefix root: never mirrored")
    b.put(sync.key("docs/guide.md"), b"a folder without versions: never mirrored")

    without = sync.once()
    assert without.returncode == 0, without.stderr
    assert sorted(p.name for p in (sync.dest / "resnet").iterdir()) == ["1"]

    result = sync.once("--model-files")
    assert result.returncode == 0, result.stderr
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == CONFIG
    assert (sync.dest / "resnet" / "labels.txt").read_bytes() == b"cat\ndog\n"
    assert (sync.dest / "resnet" / "config.pbtxt").stat().st_mode & 0o777 == 0o644
    assert not (sync.dest / "README.md").exists()
    assert not (sync.dest / "docs").exists()
    assert "2 model file(s) changed" in result.stderr
    again = sync.once("--model-files", "--log-format", "json")
    assert again.returncode == 0, again.stderr
    [done] = events(again.stderr, "pass_done")
    assert (done["outcome"], done["object_reads"]) == ("noop", 0)


def test_a_changed_model_file_is_replaced_and_a_removed_one_is_deleted(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), CONFIG)
    b.put(sync.key("resnet/labels.txt"), b"cat\n")
    assert sync.once("--model-files").returncode == 0
    b.put(sync.key("resnet/config.pbtxt"), CONFIG + b"max_batch_size: 8\n")
    b.delete(sync.key("resnet/labels.txt"))

    plan = sync.run("plan", "--model-files")
    assert plan.returncode == 0, plan.stderr
    assert "write-file" in plan.stdout
    assert "resnet/config.pbtxt" in plan.stdout
    assert "remove-file" in plan.stdout
    assert "resnet/labels.txt" in plan.stdout

    result = sync.once("--model-files")
    assert result.returncode == 0, result.stderr
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == CONFIG + b"max_batch_size: 8\n"
    assert not (sync.dest / "resnet" / "labels.txt").exists()
    assert sync.versions("resnet") == ["1"]


def test_a_hand_made_file_beside_the_versions_is_never_touched(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), CONFIG)
    (sync.dest / "resnet").mkdir(parents=True)
    (sync.dest / "resnet" / "config.pbtxt").write_bytes(b"made by hand\n")
    (sync.dest / "resnet" / "notes.txt").write_bytes(b"mine\n")

    result = sync.once("--model-files")
    assert result.returncode == 0, result.stderr
    assert "config.pbtxt: in the bucket, but a file we did not write is there" in result.stderr
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == b"made by hand\n"
    b.delete(sync.key("resnet/config.pbtxt"))
    assert sync.once("--model-files").returncode == 0
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == b"made by hand\n"
    assert (sync.dest / "resnet" / "notes.txt").read_bytes() == b"mine\n"


def test_a_model_file_is_written_after_its_models_versions_are_published(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), CONFIG)
    result = sync.once("--model-files", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    order = [
        r["event"]
        for r in map(json.loads, filter(None, result.stderr.splitlines()))
        if r["event"] in ("published", "file_written")
    ]
    assert order == ["published", "file_written"]


def test_a_config_is_held_back_while_a_version_of_its_model_fails(sync: Sync) -> None:
    """A new config.pbtxt may name the new version: it waits until that version is in."""
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), CONFIG)
    b.put_zip(sync.key("bert/1.zip"), sample_files("b"))
    b.put(sync.key("bert/config.pbtxt"), b'name: "bert"\n')
    assert sync.once("--model-files").returncode == 0
    b.put(sync.key("resnet/2.zip"), b"not a zip at all")
    b.put(
        sync.key("resnet/config.pbtxt"), CONFIG + b"version_policy: { specific: { versions: 2 }}\n"
    )
    b.put(sync.key("bert/config.pbtxt"), b'name: "bert"\nmax_batch_size: 4\n')

    result = sync.once("--model-files")
    assert result.returncode == 1, result.stderr
    assert "not changing resnet/config.pbtxt yet" in result.stderr
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == CONFIG
    assert (
        sync.dest / "bert" / "config.pbtxt"
    ).read_bytes() == b'name: "bert"\nmax_batch_size: 4\n'

    b.put_zip(sync.key("resnet/2.zip"), sample_files("c"))
    fixed = sync.once("--model-files")
    assert fixed.returncode == 0, fixed.stderr
    assert sync.version("resnet/2") == sample_files("c")
    assert b"specific" in (sync.dest / "resnet" / "config.pbtxt").read_bytes()


def test_model_files_obey_the_deletion_guards(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    b.put(sync.key("resnet/config.pbtxt"), CONFIG)
    assert sync.once("--model-files").returncode == 0
    b.delete(sync.key("resnet/config.pbtxt"))

    capped = sync.once("--model-files", "--max-delete", "0")
    assert capped.returncode == 3, capped.stderr
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == CONFIG

    b.delete(sync.key("resnet/1.zip"))
    empty = sync.once("--model-files")
    assert empty.returncode == 3, empty.stderr
    assert (sync.dest / "resnet" / "config.pbtxt").read_bytes() == CONFIG
    assert sync.versions("resnet") == ["1"]


def test_status_names_the_model_files_a_pass_would_change(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    sync.bucket.put(sync.key("resnet/config.pbtxt"), CONFIG)
    status = sync.run("status", "--model-files")
    assert status.returncode == 0, status.stderr
    assert "out of sync: write config.pbtxt" in status.stdout
    assert "in sync" in sync.run("status").stdout  # without the option: nothing to do
