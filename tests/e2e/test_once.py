"""`once`: the core pass, driven through the real CLI against the emulator."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import PREFIX, Sync
from tests.support.models import make_piped_zip, make_tar, make_zip, sample_files
from tests.support.probes import get, metric, wait_for


def test_cold_sync_installs_every_form_and_ignores_other_objects(sync: Sync) -> None:
    b = sync.bucket
    b.put_zip(sync.key("resnet/0001.zip"), sample_files("a"), top="0001")  # the seed's format
    b.put_zip(sync.key("resnet/0002.zip"), sample_files("b"))  # archive root is the version
    b.put_tar(sync.key("bert/0003.tar.gz"), sample_files("c"), top="0003", gz=True)
    b.put_tar(sync.key("bert/4.tgz"), sample_files("d"), gz=True)
    b.put_tar(sync.key("team/ranker/7.tar"), sample_files("e"), top="whatever")
    b.put_folder(sync.key("gpt/0005"), sample_files("f"))
    b.put(sync.key("README.md"), b"not a model")
    b.put(sync.key("gpt/latest.txt"), b"0005")
    b.put(sync.key("gpt/0006/"), b"")  # a folder placeholder, not a version

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("resnet/0001") == sample_files("a")
    assert sync.version("resnet/0002") == sample_files("b")
    assert sync.version("bert/0003") == sample_files("c")
    assert sync.version("bert/4") == sample_files("d")
    # a lone top folder not named as its version is the version's content, kept as is
    whatever = {f"whatever/{name}": data for name, data in sample_files("e").items()}
    assert sync.version("team/ranker/7") == whatever
    assert sync.version("gpt/0005") == sample_files("f")
    assert sync.versions("gpt") == ["0005"]
    assert not (sync.dest / "README.md").exists()
    staging = sync.dest / ".gcs-model-sync" / "staging"
    assert list(staging.iterdir()) == []


def test_prefix_pointing_at_one_model_puts_versions_directly_under_dest(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("0002.zip"), sample_files("x"), top="0002")
    result = sync.once()
    assert result.returncode == 0, result.stderr
    assert sync.version("0002") == sample_files("x")


def test_rerun_with_nothing_to_change_reads_no_object(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"), top="1")
    sync.bucket.put_folder(sync.key("m/2"), sample_files("b"))
    assert sync.once().returncode == 0

    result = sync.once("--log-format", "json")

    assert result.returncode == 0, result.stderr
    done = [json.loads(line) for line in result.stderr.splitlines() if '"pass_done"' in line]
    assert done[-1]["outcome"] == "noop"
    assert done[-1]["object_reads"] == 0
    assert done[-1]["list_requests"] == 1


def test_version_removed_from_bucket_is_pruned(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["2"]
    assert "pruned m/1" in result.stderr


def test_changed_object_generation_replaces_the_version(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("old"))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("new"))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == sample_files("new")
    assert "changed" in result.stderr


def test_keep_installs_only_the_newest_and_prunes_older_managed(sync: Sync) -> None:
    for v in ("1", "2", "3"):
        sync.bucket.put_zip(sync.key(f"m/{v}.zip"), sample_files(v))
    assert sync.once().returncode == 0
    assert sync.versions("m") == ["1", "2", "3"]

    result = sync.once("--keep", "2")

    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["2", "3"]


def test_plan_prints_exactly_what_once_deletes(sync: Sync) -> None:
    """An ambiguous upload of m (rejected while planning) holds back m's deletions; n's go.
    `plan` says so first, row for row."""
    for model in ("m", "n"):
        for v in ("1", "2"):
            sync.bucket.put_zip(sync.key(f"{model}/{v}.zip"), sample_files(model + v))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("m3"))
    sync.bucket.put_zip(sync.key("m/0003.tgz"), sample_files("m3"))
    sync.bucket.put_zip(sync.key("n/3.zip"), sample_files("n3"))

    plan = sync.run("plan", "--keep", "2")

    rows = {tuple(line.split()[:2]) for line in plan.stdout.splitlines()[1:-1]}
    assert {("hold", "m/1"), ("prune", "n/1"), ("fetch", "n/3"), ("reject", "m/0003")} <= rows
    assert "1 to prune" in plan.stdout
    result = sync.once("--keep", "2")
    assert result.returncode == 1, result.stderr  # the ambiguous upload
    assert sync.versions("m") == ["1", "2"]  # held back, as planned
    assert sync.versions("n") == ["2", "3"]


def test_hand_made_folders_and_files_are_never_deleted(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    (sync.dest / "m" / "9").mkdir(parents=True)
    (sync.dest / "m" / "9" / "saved_model.pb").write_bytes(b"mine")
    (sync.dest / "models.config").write_text("model_config_list {}")
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["2", "9"]
    assert (sync.dest / "m" / "9" / "saved_model.pb").read_bytes() == b"mine"
    assert (sync.dest / "models.config").read_text() == "model_config_list {}"
    assert "m/9: not installed by us" in result.stderr


def test_local_version_not_installed_by_us_but_in_bucket_is_replaced(sync: Sync) -> None:
    (sync.dest / "m" / "1").mkdir(parents=True)
    (sync.dest / "m" / "1" / "stale.pb").write_bytes(b"stale")
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    result = sync.once()

    assert result.returncode == 0, result.stderr
    assert sync.version("m/1") == sample_files("a")


def test_ambiguous_version_installs_neither_and_the_rest_goes_on(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("a"))
    sync.bucket.put_tar(sync.key("m/0002.tar.gz"), sample_files("b"), gz=True)
    sync.bucket.put_zip(sync.key("m/3.zip"), sample_files("c"))
    sync.bucket.put_folder(sync.key("m/3"), sample_files("d"))
    sync.bucket.put_zip(sync.key("m/4.zip"), sample_files("e"))

    result = sync.once()

    assert result.returncode == 1
    assert sync.versions("m") == ["4"]
    errors = [x for x in result.stderr.splitlines() if "ERROR" in x and "ambiguous" in x]
    assert len(errors) == 2
    assert any("m/2.zip" in e and "m/0002.tar.gz" in e for e in errors)
    assert any("m/3.zip" in e and "m/3/" in e for e in errors)
    assert "Traceback" not in result.stderr


def test_corrupt_archive_is_rejected_and_published_versions_are_untouched(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("good"))
    assert sync.once().returncode == 0
    sync.bucket.put(sync.key("m/2.zip"), b"PK\x03\x04 this is not really a zip")
    sync.bucket.put(sync.key("m/3.tar.gz"), make_tar(sample_files("t"), gz=True)[:-40])
    sync.bucket.put_zip(sync.key("other/5.zip"), sample_files("ok"))

    result = sync.once()

    assert result.returncode == 1
    assert sync.versions("m") == ["1"]
    assert sync.version("m/1") == sample_files("good")
    assert sync.version("other/5") == sample_files("ok")
    lines = result.stderr.splitlines()
    assert any(f"gs://{sync.bucket.name}/{PREFIX}/m/2.zip" in x and "zip" in x for x in lines)
    assert any(f"{PREFIX}/m/3.tar.gz" in x for x in lines if "ERROR" in x)
    assert "Traceback" not in result.stderr


def test_hostile_archives_write_nothing_outside_dest(sync: Sync, tmp_path: Path) -> None:
    import io
    import tarfile
    import zipfile

    outside = tmp_path / "outside"
    outside.mkdir()

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        zf.writestr("../../escaped.txt", b"evil")
    sync.bucket.put(sync.key("m/1.zip"), buf.getvalue())
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as tf:
        link = tarfile.TarInfo("variables")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tf.addfile(link)
        data = tarfile.TarInfo("variables/pwned.txt")
        data.size = 4
        tf.addfile(data, io.BytesIO(b"evil"))
    sync.bucket.put(sync.key("m/2.tar"), tbuf.getvalue())
    sync.bucket.put(sync.key("m/../3.zip"), make_zip(sample_files("k")))
    sync.bucket.put_zip(sync.key("m/4.zip"), sample_files("fine"))

    result = sync.once()

    assert result.returncode == 1
    assert sync.versions("m") == ["4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "outside"]
    assert list(outside.iterdir()) == []
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not list(tmp_path.rglob("pwned.txt"))
    errors = [x for x in result.stderr.splitlines() if "ERROR" in x]
    assert any("m/1.zip" in e and "escapes" in e for e in errors)
    assert any("m/2.tar" in e and "leaves the version folder" in e for e in errors)
    assert any("m/../3.zip" in e and "unsafe object key" in e for e in errors)


def test_empty_listing_deletes_nothing_and_exits_3(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))

    refused = sync.once()
    assert refused.returncode == 3
    assert sync.versions("m") == ["1"]
    assert "--allow-empty-source" in refused.stderr

    allowed = sync.once("--allow-empty-source")
    assert allowed.returncode == 0, allowed.stderr
    assert sync.versions("m") == []


def test_typo_in_prefix_never_wipes_the_node(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    typo = sync.run("once", "--source", f"gs://{sync.bucket.name}/modles")
    # the later --source wins; the listing is empty, the guard refuses
    assert typo.returncode == 3
    assert sync.versions("m") == ["1"]


def test_typo_prefix_on_fresh_node_exits_3_and_stays_unready(sync: Sync, tmp_path: Path) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    typo = f"gs://{sync.bucket.name}/modles"
    said = f"{typo}/ holds no model versions and nothing is installed: nothing to serve"
    config_file = tmp_path / "models.config"

    result = sync.once("--source", typo, "--tfs-config", str(config_file))

    assert result.returncode == 3, result.stderr
    assert len([x for x in result.stderr.splitlines() if said in x]) == 1
    assert "--allow-empty-source" in result.stderr
    assert "Traceback" not in result.stderr
    assert not config_file.exists()  # TF Serving is never told to serve no model
    planned = sync.run("plan", "--source", typo)
    assert planned.returncode == 3
    assert said in planned.stdout

    with sync.sidecar("--source", typo, "--tfs-config", str(config_file)) as (proc, port):
        wait_for(lambda: metric(port, "gcs_model_sync_consecutive_failures") >= 3)
        assert get(port, "/readyz") == (503, "no model version on disk\n")
        assert metric(port, "gcs_model_sync_last_listing_timestamp_seconds") > 0
        assert metric(port, "gcs_model_sync_last_success_timestamp_seconds") == 0
        assert get(port, "/healthz")[0] == 200
        assert proc.poll() is None  # the loop goes on: the right objects may appear
    assert not config_file.exists()
    assert sync.versions("m") == []


def test_allow_empty_source_accepts_an_empty_prefix(sync: Sync, tmp_path: Path) -> None:
    config_file = tmp_path / "models.config"

    result = sync.once("--allow-empty-source", "--tfs-config", str(config_file))

    assert result.returncode == 0, result.stderr
    assert "holds no model versions" not in result.stderr
    assert config_file.exists()  # accepted: an explicitly empty model list
    assert sync.run("plan", "--allow-empty-source").returncode == 0
    with sync.sidecar("--allow-empty-source") as (_proc, port):
        wait_for(lambda: metric(port, 'gcs_model_sync_passes_total{outcome="noop"}') >= 2)
        assert metric(port, "gcs_model_sync_consecutive_failures") == 0
        assert metric(port, "gcs_model_sync_last_success_timestamp_seconds") > 0
        # a success, but nothing to serve: still not ready
        assert get(port, "/readyz") == (503, "no model version on disk\n")
        sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
        wait_for(lambda: get(port, "/readyz")[0] == 200, what="ready once a version is there")


def test_max_delete_refuses_a_larger_pass(sync: Sync) -> None:
    for v in ("1", "2", "3"):
        sync.bucket.put_zip(sync.key(f"m/{v}.zip"), sample_files(v))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))
    sync.bucket.delete(sync.key("m/2.zip"))

    result = sync.once("--max-delete", "1")

    assert result.returncode == 3
    assert sync.versions("m") == ["1", "2", "3"]
    assert "--max-delete 1" in result.stderr


def test_missing_bucket_fails_fast_naming_it(sync: Sync) -> None:
    result = sync.run("once", "--source", "gs://no-such-bucket-here/models")
    assert result.returncode == 1
    assert "bucket gs://no-such-bucket-here not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_source_that_is_not_gs_is_a_usage_error(sync: Sync) -> None:
    result = sync.run("once", "--source", "s3://bucket/models")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "gs://BUCKET" in result.stderr


def test_dest_that_is_a_file_is_a_usage_error(sync: Sync) -> None:
    sync.dest.parent.mkdir(parents=True, exist_ok=True)
    sync.dest.write_text("oops")
    result = sync.once()
    assert result.returncode == 2
    assert f"--dest {sync.dest}: not a directory ({sync.dest} is a file)" in result.stderr


def test_second_writer_waits_briefly_then_exits_nonzero(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    lock = sync.dest / ".gcs-model-sync" / "lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        result = sync.once("--lock-timeout", "0.5")
    finally:
        os.close(fd)
    assert result.returncode == 1
    assert "another gcs-model-sync is writing to this destination" in result.stderr
    assert sync.versions("m") == []


def test_stale_staging_from_a_killed_run_is_cleaned(sync: Sync) -> None:
    stale = sync.dest / ".gcs-model-sync" / "staging" / "m_1.deadbeef" / "tree"
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"x" * 100)
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    result = sync.once()
    assert result.returncode == 0
    assert list((sync.dest / ".gcs-model-sync" / "staging").iterdir()) == []
    assert "removed 1 staging leftover(s) of an interrupted pass" in result.stderr


def test_plan_shows_changes_and_touches_nothing(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b2"))
    sync.bucket.put_folder(sync.key("m/3"), sample_files("c"))
    snapshot = {p: p.stat().st_mtime_ns for p in sync.dest.rglob("*")}

    result = sync.run("plan")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(x.split()[:2] == ["fetch", "m/3"] for x in lines)
    assert any(x.split()[:2] == ["replace", "m/2"] for x in lines)
    assert any(x.split()[:2] == ["prune", "m/1"] for x in lines)
    assert {p: p.stat().st_mtime_ns for p in sync.dest.rglob("*")} == snapshot


def test_plan_on_a_missing_dest_creates_nothing(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    result = sync.run("plan", "--log-format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [a["version"] for a in doc["actions"] if a["action"] == "fetch"] == ["m/1"]
    assert not sync.dest.exists()


def test_status_reports_each_model(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("a/1.zip"), sample_files("a"))
    assert sync.once().returncode == 0
    sync.bucket.put_zip(sync.key("b/7.zip"), sample_files("b"))

    result = sync.run("status", "--log-format", "json")

    assert result.returncode == 0, result.stderr
    models = {m["model"]: m for m in json.loads(result.stdout)["models"]}
    assert models["a"]["in_sync"] is True
    assert models["a"]["bucket"] == ["1"]
    assert models["a"]["local"] == ["1"]
    assert models["b"]["in_sync"] is False
    assert models["b"]["bucket"] == ["7"]
    assert models["b"]["local"] == []


def test_environment_variables_configure_every_command(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    from tests.support.cli import run_cli

    env = {"GCS_MODEL_SYNC_SOURCE": sync.source, "GCS_MODEL_SYNC_DEST": str(sync.dest)}
    result = run_cli(["once"], sync.endpoint, env=env)
    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["1"]


def test_tfs_config_names_every_model_and_changes_only_when_models_do(sync: Sync) -> None:
    from tests.servers.test_tfs_config import configs

    config_file = sync.dest / "models.config"
    sync.bucket.put_zip(sync.key("resnet/1.zip"), sample_files("a"))
    sync.bucket.put_folder(sync.key("team/bert/4"), sample_files("b"))
    assert sync.once("--tfs-config", str(config_file)).returncode == 0
    first = configs(config_file.read_text())
    assert [(name, path) for name, path, _ in first] == [
        ("resnet", str(sync.dest / "resnet")),
        ("team_bert", str(sync.dest / "team" / "bert")),
    ]
    mtime = config_file.stat().st_mtime_ns

    sync.bucket.put_zip(sync.key("resnet/2.zip"), sample_files("c"))  # a version, not a model
    assert sync.once("--tfs-config", str(config_file)).returncode == 0
    assert config_file.stat().st_mtime_ns == mtime

    sync.bucket.delete_prefix(sync.key("team/"))
    sync.bucket.put_zip(sync.key("gpt/9.zip"), sample_files("d"))
    assert sync.once("--tfs-config", str(config_file)).returncode == 0
    assert [name for name, _, _ in configs(config_file.read_text())] == ["gpt", "resnet"]


def test_on_change_runs_after_once_and_a_failing_hook_fails_it(sync: Sync, tmp_path: Path) -> None:
    import sys

    marker = tmp_path / "published.txt"
    script = tmp_path / "hook.py"
    script.write_text(
        f"import os\nopen({str(marker)!r}, 'w').write(os.environ['GCS_MODEL_SYNC_PUBLISHED'])\n"
    )
    hook = f"{sys.executable} {script}"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    assert sync.once("--on-change", hook).returncode == 0
    assert marker.read_text() == "m/1"

    marker.unlink()
    assert sync.once("--on-change", hook).returncode == 0  # nothing changed: no hook
    assert not marker.exists()

    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    failing = sync.once("--on-change", "false")
    assert failing.returncode == 1
    assert sync.versions("m") == ["1", "2"]  # the sync itself went through
    assert "--on-change exited 1" in failing.stderr


def test_zip_that_needs_random_access_is_installed_from_a_spooled_copy(sync: Sync) -> None:
    """A zip written to a pipe cannot be extracted while it streams: it is spooled to
    staging and extracted from there, and nothing is left behind."""
    files = sample_files("spooled")
    sync.bucket.put(sync.key("m/3.zip"), make_piped_zip(files, "0003"))

    result = sync.once("-v")

    assert result.returncode == 0, result.stderr
    assert "extracting from a local copy" in result.stderr
    assert sync.version("m/3") == files
    assert list((sync.dest / ".gcs-model-sync" / "staging").iterdir()) == []


def test_a_failed_listing_on_a_fresh_dest_writes_nothing(sync: Sync, tmp_path: Path) -> None:
    """A typo'd bucket or prefix on a node with nothing yet: not even our state folder."""
    sync.dest = tmp_path / "fresh" / "models"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    missing = sync.run("once", "--source", "gs://no-such-bucket-here/models")
    typo = sync.run("once", "--source", f"gs://{sync.bucket.name}/modles")

    assert missing.returncode == 1, missing.stderr
    assert typo.returncode == 3, typo.stderr
    assert not (tmp_path / "fresh").exists()
    assert sync.once().returncode == 0  # the right source still installs
    assert sync.versions("m") == ["1"]


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_dest_that_cannot_be_a_folder_is_one_usage_error(
    sync: Sync, tmp_path: Path, where: str
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("oops")
    sync.dest = afile if where == "a file" else afile / "models"
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))

    result = sync.once()

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == f"gcs-model-sync: error: --dest {sync.dest}: not a directory ({afile} is a file)"
    assert afile.read_text() == "oops"


def test_trash_left_by_a_prune_is_emptied_quietly_next_pass(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/1.zip"), sample_files("a"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b"))
    assert sync.once().returncode == 0
    sync.bucket.delete(sync.key("m/1.zip"))
    sync.bucket.put_zip(sync.key("m/2.zip"), sample_files("b2"))
    assert sync.once().returncode == 0  # a prune and a replace: two trees in the trash

    result = sync.once("-v")

    assert result.returncode == 0, result.stderr
    assert list((sync.dest / ".gcs-model-sync" / "trash").iterdir()) == []
    said = [x for x in result.stderr.splitlines() if "the trash" in x or "leftover" in x]
    assert len(said) == 1, result.stderr
    assert " DEBUG " in said[0], said[0]  # routine: not reported like a crash's leftovers
    assert "2 tree(s) retired by the last pass" in said[0], said[0]
