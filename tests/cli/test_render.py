"""What `plan` and `status` print from views.py's rows, and the start line's fields."""

from __future__ import annotations

import json
from pathlib import Path

from gcs_model_sync.cli.render import plan_output, start_fields, status_output
from gcs_model_sync.cli.views import model_status, plan_rows
from gcs_model_sync.local.state import Managed
from tests.cli.test_views import config, fp, obj, snapshot


def test_plan_text_is_a_line_per_action_and_the_counts(tmp_path: Path) -> None:
    kept, new = obj("m/2.zip"), obj("m/3.zip", size=2048)
    snap = snapshot([kept, new], [Managed("m", "2", fp(kept))], on_disk=("m/2", "m/9"))
    c = config(tmp_path)
    text = plan_output(c, snap.plan, plan_rows(c, snap))
    lines = text.splitlines()
    assert lines[0] == f"plan: gs://bkt/p/ -> {tmp_path}"
    assert lines[1].split(None, 2) == ["fetch", "m/3", "zip, download 2.0 KiB, new"]
    assert lines[2].split(None, 2)[:2] == ["leave", "m/9"]
    assert lines[-1] == "1 to fetch, 0 to replace, 0 to prune, 1 in sync, 0 waiting, 0 rejected"


def test_plan_json_is_one_document_of_the_rows(tmp_path: Path) -> None:
    snap = snapshot([obj("m/3.zip")])
    c = config(tmp_path, output="json")
    planned = plan_rows(c, snap)
    doc = json.loads(plan_output(c, snap.plan, planned))
    assert doc == {
        "source": "gs://bkt/p/",
        "dest": str(tmp_path),
        "actions": planned.rows,
        "in_sync": [],
        "guard": None,
    }


def columns(line: str, width: int = 5) -> list[str]:
    """A status row's MODEL, BUCKET, LOCAL and STATE (columns 24 wide, two spaces apart)."""
    bucket, local = width + 2, width + 2 + 26
    cut = [line[:width], line[bucket : bucket + 24], line[local : local + 24], line[local + 26 :]]
    return [c.strip() for c in cut]


def test_status_table_and_json_say_the_same(tmp_path: Path) -> None:
    kept = obj("m/2.zip")
    managed = [Managed("m", "1", "x", bytes=7), Managed("m", "2", fp(kept))]
    snap = snapshot([kept], managed, on_disk=("m/1", "m/2"), max_delete=0)
    c = config(tmp_path, max_delete=0)
    planned = plan_rows(c, snap)
    models = model_status(snap, planned)

    table = status_output(c, models, planned).splitlines()
    assert table[0].split() == ["MODEL", "BUCKET", "LOCAL", "STATE"]
    assert columns(table[1]) == ["m", "2", "1 2", "out of sync: refused prune 1"]
    assert table[2].startswith("guard: ")
    assert "--max-delete 0" in table[2]

    doc = json.loads(status_output(config(tmp_path, output="json"), models, planned))
    assert doc["models"] == models
    assert doc["guard"] == planned.guard


def test_a_long_version_list_keeps_its_newest_end(tmp_path: Path) -> None:
    objects = [obj(f"m/{n}.zip") for n in range(100, 120)]
    snap = snapshot(objects)
    c = config(tmp_path)
    planned = plan_rows(c, snap)
    row = status_output(c, model_status(snap, planned), planned).splitlines()[1]
    bucket = columns(row)[1]
    assert bucket.startswith("…")
    assert bucket.endswith("118 119")
    assert len(bucket) == 24


def test_start_fields_keep_json_types_and_redact_credentials(tmp_path: Path) -> None:
    c = config(tmp_path, server="http://admin:hunter2@localhost:8501", keep=3)
    fields = start_fields(c)
    assert (fields["keep"], fields["max_delete"], fields["anonymous"]) == (3, None, False)
    assert fields["dest"] == str(tmp_path)
    assert fields["source"] == "gs://bkt/p/"
    assert "hunter2" not in json.dumps(fields)
