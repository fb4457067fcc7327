"""Uploads and deletes in progress: a folder-form version is published only when complete.

Real uploaders (`gsutil -m cp -r`, `gcloud storage cp -r`, a training job's writer) put a
version's files one at a time; TF Serving loads the first thing it sees under a version
number and never reloads it. Each scenario runs the real CLI against the emulator.
"""

from __future__ import annotations

import gzip
import json
import time

from tests.e2e.conftest import Sync
from tests.support.faultproxy import FaultProxy
from tests.support.models import make_zip, sample_files
from tests.support.probes import metric, wait_for
from tests.support.protos import FROZEN_GRAPH, OPENVINO_XML, TF2_GRAPH, onnx_model, tensor

SETTLE = 2.0  # seconds: short enough for a test, long enough to catch an upload mid-way
# sample_files() split the way an uploader sends them: the graph first, the variables after.
GRAPH = "saved_model.pb"
VARIABLES = ("variables/variables.index", "variables/variables.data-00000-of-00001")


def put_files(sync: Sync, version: str, files: dict[str, bytes], *names: str) -> None:
    for name in names:
        sync.bucket.put(sync.key(f"{version}/{name}"), files[name])


def waits(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " waits: " in line]


def test_folder_version_mid_upload_waits_for_settle_then_publishes(sync: Sync) -> None:
    files = sample_files("new")
    put_files(sync, "m/0003", files, GRAPH)

    first = sync.once("--settle", str(SETTLE))

    assert first.returncode == 0, first.stderr
    assert sync.versions("m") == []
    assert "m/0003 waits: settling" in first.stderr
    put_files(sync, "m/0003", files, *VARIABLES)
    plan = sync.run("plan", "--settle", str(SETTLE))
    assert plan.returncode == 0, plan.stderr
    assert "wait" in plan.stdout
    assert "m/0003" in plan.stdout
    assert "1 waiting" in plan.stdout
    time.sleep(SETTLE + 1)  # the Date header has whole seconds

    done = sync.once("--settle", str(SETTLE))

    assert done.returncode == 0, done.stderr
    assert sync.version("m/0003") == files


def test_archive_versions_never_wait_for_settle(sync: Sync) -> None:
    sync.bucket.put_zip(sync.key("m/0004.zip"), sample_files("z"))
    result = sync.once("--settle", "3600")
    assert result.returncode == 0, result.stderr
    assert sync.version("m/0004") == sample_files("z")


def test_ready_marker_gates_publish_and_a_write_after_it_waits_again(sync: Sync) -> None:
    files = sample_files("a")
    marker = ("--ready-marker", "_SUCCESS", "--settle", "0")
    put_files(sync, "m/5", files, GRAPH, *VARIABLES)

    before = sync.once(*marker)

    assert before.returncode == 0, before.stderr
    assert sync.versions("m") == []
    assert "waiting for its ready marker _SUCCESS" in before.stderr
    sync.bucket.put(sync.key("m/5/_SUCCESS"), b"")
    assert sync.once(*marker).returncode == 0
    assert sync.version("m/5") == {**files, "_SUCCESS": b""}

    time.sleep(0.01)  # an object finalized after the marker
    sync.bucket.put(sync.key(f"m/5/{GRAPH}"), b"pb: a new graph")
    rewrite = sync.once(*marker)

    assert rewrite.returncode == 0, rewrite.stderr
    assert "is newer than its ready marker _SUCCESS" in rewrite.stderr
    assert sync.version("m/5")[GRAPH] == files[GRAPH]  # the served folder is untouched
    sync.bucket.put(sync.key("m/5/_SUCCESS"), b"")
    assert sync.once(*marker).returncode == 0
    assert sync.version("m/5")[GRAPH] == b"pb: a new graph"


def test_saved_model_missing_an_announced_shard_waits(sync: Sync) -> None:
    files = {
        GRAPH: b"graph",
        "variables/variables.index": b"index",
        "variables/variables.data-00000-of-00002": b"shard 0",
        "variables/variables.data-00001-of-00002": b"shard 1",
    }
    put_files(sync, "m/6", files, *list(files)[:3])

    partial = sync.once("--settle", "0")

    assert partial.returncode == 0, partial.stderr
    assert sync.versions("m") == []
    assert "SavedModel missing variables/variables.data-00001-of-00002" in partial.stderr
    status = sync.run("status", "--settle", "0")
    assert "waiting 6 (SavedModel missing" in status.stdout
    put_files(sync, "m/6", files, "variables/variables.data-00001-of-00002")
    assert sync.once("--settle", "0").returncode == 0
    assert sync.version("m/6") == files


def test_reupload_in_progress_never_mixes_into_the_served_folder(sync: Sync) -> None:
    old, new = sample_files("old"), sample_files("new")
    put_files(sync, "m/7", old, GRAPH, *VARIABLES)
    assert sync.once("--settle", "0").returncode == 0
    put_files(sync, "m/7", new, GRAPH)  # the re-upload has sent one file so far

    midway = sync.once("--settle", str(SETTLE))

    assert midway.returncode == 0, midway.stderr
    assert sync.version("m/7") == old
    assert "the installed version stays" in midway.stderr
    put_files(sync, "m/7", new, *VARIABLES)
    time.sleep(SETTLE + 1)
    assert sync.once("--settle", str(SETTLE)).returncode == 0
    assert sync.version("m/7") == new


def test_partial_delete_keeps_the_installed_version_until_it_is_gone(sync: Sync) -> None:
    files = sample_files("d")
    put_files(sync, "m/8", files, GRAPH, *VARIABLES)
    assert sync.once("--settle", "0").returncode == 0
    sync.bucket.delete(sync.key(f"m/8/{GRAPH}"))  # `gcloud storage rm -r`, one object done

    partly = sync.once("--settle", "0")

    assert partly.returncode == 0, partly.stderr
    assert sync.version("m/8") == files
    [warning] = waits(partly.stderr)
    assert "lost 1 of its 3 objects" in warning
    for name in VARIABLES:
        sync.bucket.delete(sync.key(f"m/8/{name}"))
    gone = sync.once("--settle", "0", "--allow-empty-source")
    assert gone.returncode == 0, gone.stderr
    assert sync.versions("m") == []


def test_run_says_once_why_a_version_waits_and_counts_it(sync: Sync) -> None:
    put_files(sync, "m/9", sample_files("w"), GRAPH)
    with sync.sidecar("--settle", "3600", "--log-format", "json") as (proc, port):
        wait_for(lambda: metric(port, "gcs_model_sync_versions_waiting") == 1, what="waiting")
        wait_for(
            lambda: metric(port, 'gcs_model_sync_passes_total{outcome="noop"}') >= 4,
            what="several passes",
        )
        sync.bucket.put(sync.key("m/10.zip"), make_zip(sample_files("x")))
        wait_for(lambda: sync.versions("m") == ["10"], what="the archive version")
        assert metric(port, 'gcs_model_sync_passes_total{outcome="error"}') == 0
    _, stderr = proc.communicate()
    said = [json.loads(line) for line in stderr.splitlines() if '"version_waiting"' in line]
    assert [(e["version"], e["kind"]) for e in said] == [("9", "settling")]


def test_settling_follows_the_bucket_clock_not_the_node_clock(
    proxied: Sync, proxy: FaultProxy
) -> None:
    """The proxy moves the bucket's clock (its `Date` and the objects' times together) an hour
    away from this node's. Judged on the node's clock, a fresh upload would look an hour old
    (published early) or an hour in the future (an hour's wait); judged on the bucket's, it
    is fresh either way, and settles after --settle."""
    files = sample_files("skew")
    for offset, version in ((-3600.0, "m/11"), (3600.0, "m/12")):
        proxy.clock_offset = offset
        put_files(proxied, version, files, GRAPH, *VARIABLES)

        fresh = proxied.once("--settle", str(SETTLE))

        assert fresh.returncode == 0, fresh.stderr
        assert f"{version} waits: settling" in fresh.stderr
        assert not (proxied.dest / version).exists()
        time.sleep(SETTLE + 1)
        settled = proxied.once("--settle", str(SETTLE))
        assert settled.returncode == 0, settled.stderr
        assert proxied.version(version) == files


def test_saved_model_graph_that_references_variables_waits_for_them_then_publishes(
    sync: Sync,
) -> None:
    """`gsutil cp -r` sends saved_model.pb before variables/: published then, TF Serving would
    serve uninitialised variables under that number and never reload it."""
    files = {GRAPH: TF2_GRAPH, **{name: name.encode() for name in VARIABLES}}
    put_files(sync, "m/13", files, GRAPH)

    early = sync.once("--settle", "0")

    assert early.returncode == 0, early.stderr
    assert sync.versions("m") == []
    assert "m/13 waits: saved_model.pb references variables but no variables/" in early.stderr
    plan = sync.run("plan", "--settle", "0")
    assert plan.returncode == 0, plan.stderr
    assert "saved_model.pb references variables but no variables/ uploaded yet" in plan.stdout
    put_files(sync, "m/13", files, *VARIABLES)
    done = sync.once("--settle", "0")
    assert done.returncode == 0, done.stderr
    assert sync.version("m/13") == files


def test_frozen_graph_without_variables_is_published_at_once(
    proxied: Sync, proxy: FaultProxy
) -> None:
    proxied.bucket.put(proxied.key(f"m/14/{GRAPH}"), FROZEN_GRAPH)

    result = proxied.once("--settle", "0")

    assert result.returncode == 0, result.stderr
    assert proxied.version("m/14") == {GRAPH: FROZEN_GRAPH}
    proxy.reset_counts()
    again = proxied.once("--settle", "0")
    assert again.returncode == 0, again.stderr
    assert proxy.counts["download"] == 0  # an installed graph is never read again


def test_triton_savedmodel_folder_missing_a_shard_waits(sync: Sync) -> None:
    """Triton's tensorflow_savedmodel layout: the SavedModel sits in V/model.savedmodel/."""
    root = "model.savedmodel"
    files = {
        f"{root}/{GRAPH}": TF2_GRAPH,
        f"{root}/variables/variables.index": b"index",
        f"{root}/variables/variables.data-00000-of-00002": b"shard 0",
        f"{root}/variables/variables.data-00001-of-00002": b"shard 1",
        "config.pbtxt": b'platform: "tensorflow_savedmodel"',
    }
    names = list(files)
    put_files(sync, "m/15", files, names[0], names[1], names[2], names[4])

    partial = sync.once("--settle", "0")

    assert partial.returncode == 0, partial.stderr
    assert sync.versions("m") == []
    assert f"SavedModel missing {root}/variables/variables.data-00001-of-00002" in partial.stderr
    put_files(sync, "m/15", files, names[3])
    assert sync.once("--settle", "0").returncode == 0
    assert sync.version("m/15") == files


def test_openvino_model_xml_without_its_bin_waits(sync: Sync) -> None:
    """An IR's topology (model.xml) is useless without its weights (model.bin); an XML file
    that is not an IR (no <net> root) needs nothing and never waits."""
    put_files(sync, "ov/1", {"model.xml": OPENVINO_XML}, "model.xml")
    sync.bucket.put(sync.key("other/1/labels.xml"), b"<labels><l>cat</l></labels>")

    early = sync.once("--settle", "0")

    assert early.returncode == 0, early.stderr
    assert sync.versions("ov") == []
    assert "ov/1 waits: model.xml refers to model.bin, not uploaded yet" in early.stderr
    assert sync.versions("other") == ["1"]
    sync.bucket.put(sync.key("ov/1/model.bin"), b"weights")
    assert sync.once("--settle", "0").returncode == 0
    assert sync.version("ov/1") == {"model.xml": OPENVINO_XML, "model.bin": b"weights"}


def test_onnx_model_with_an_external_data_file_missing_waits(sync: Sync) -> None:
    """A large ONNX model keeps its tensors in files beside model.onnx (external data)."""
    graph = onnx_model(
        tensor("w1", location="weights.bin"),
        tensor("w2", location="data/w2.bin"),
        tensor("bias"),
    )
    files = {"model.onnx": graph, "weights.bin": b"w1", "data/w2.bin": b"w2"}
    put_files(sync, "onnx/1", files, "model.onnx", "weights.bin")
    sync.bucket.put(sync.key("inline/1/model.onnx"), onnx_model(tensor("w")))

    early = sync.once("--settle", "0")

    assert early.returncode == 0, early.stderr
    assert sync.versions("onnx") == []
    assert "onnx/1 waits: model.onnx refers to data/w2.bin, not uploaded yet" in early.stderr
    assert sync.versions("inline") == ["1"]  # no external data: nothing to wait for
    put_files(sync, "onnx/1", files, "data/w2.bin")
    assert sync.once("--settle", "0").returncode == 0
    assert sync.version("onnx/1") == files


def test_run_reads_a_waiting_graph_once_not_every_pass(proxied: Sync, proxy: FaultProxy) -> None:
    files = {GRAPH: TF2_GRAPH, **{name: name.encode() for name in VARIABLES}}
    put_files(proxied, "m/16", files, GRAPH)
    with proxied.sidecar("--settle", "0") as (_proc, port):
        wait_for(lambda: metric(port, "gcs_model_sync_versions_waiting") == 1, what="waiting")
        wait_for(
            lambda: metric(port, 'gcs_model_sync_passes_total{outcome="noop"}') >= 4,
            what="several passes",
        )
        assert proxy.counts["download"] == 1
        put_files(proxied, "m/16", files, *VARIABLES)
        wait_for(lambda: proxied.versions("m") == ["16"], what="the version with its variables")
    assert proxied.version("m/16") == files


def test_a_graph_stored_gzip_encoded_is_judged_by_its_decoded_bytes(sync: Sync) -> None:
    """`gsutil cp -Z` stores the graph gzipped: its ops are read after decoding."""
    blob = sync.bucket.bucket.blob(sync.key(f"m/17/{GRAPH}"))
    blob.content_encoding = "gzip"
    blob.upload_from_string(gzip.compress(TF2_GRAPH), content_type="application/octet-stream")

    early = sync.once("--settle", "0")

    assert early.returncode == 0, early.stderr
    assert "m/17 waits: saved_model.pb references variables" in early.stderr
    put_files(sync, "m/17", {name: b"v" for name in VARIABLES}, *VARIABLES)
    assert sync.once("--settle", "0").returncode == 0
    assert sync.version("m/17")[GRAPH] == TF2_GRAPH
