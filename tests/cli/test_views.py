"""The rows `plan` prints and `status` groups by model, from a snapshot: no bucket, no CLI."""

from __future__ import annotations

from pathlib import Path

from gcs_model_sync.cli.render import status_line
from gcs_model_sync.cli.views import Planned, model_status, plan_rows
from gcs_model_sync.config import Config, Source
from gcs_model_sync.layout import RemoteObject, fingerprint, group
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import PENDING, LastFailure, Managed, State
from gcs_model_sync.phases.snapshot import Snapshot
from gcs_model_sync.plan.plan import PlanOptions, make_plan

P = "p/"


def obj(key: str, generation: int = 1, size: int = 10) -> RemoteObject:
    return RemoteObject(P + key, generation, size)


def fp(o: RemoteObject) -> str:
    [entries] = group([o], P).values()
    return fingerprint(entries[0].form, entries)


def snapshot(
    objects: list[RemoteObject],
    managed: list[Managed] = (),  # type: ignore[assignment]
    on_disk: tuple[str, ...] = (),
    failed: dict[str, LastFailure] | None = None,
    **options: object,
) -> Snapshot:
    state = State({m.id: m for m in managed}, failed=failed or {})
    local = LocalView(dict(state.versions), frozenset(on_disk))
    plan = make_plan(group(objects, P), local, PlanOptions(**options))  # type: ignore[arg-type]
    return Snapshot(objects, local, plan, state)


def config(tmp_path: Path, **kw: object) -> Config:
    return Config(source=Source.parse("gs://bkt/p"), dest=tmp_path, **kw)  # type: ignore[arg-type]


def test_status_says_new_failed_and_reinstall_with_the_reason(tmp_path: Path) -> None:
    bad, fresh, gone, cut = obj("m/8.zip"), obj("m/9.zip"), obj("m/3.zip"), obj("m/4.zip")
    snap = snapshot(
        [bad, fresh, gone, cut],
        managed=[Managed("m", "3", fp(gone), bytes=5), Managed("m", "4", PENDING)],
        failed={"m/8": LastFailure(fp(bad), "gs://bkt/p/m/8.zip: not a zip file")},
    )

    planned = plan_rows(config(tmp_path), snap)
    (m,) = model_status(snap, planned)

    states = {p["version"]: (p["action"], p["state"]) for p in m["pending"]}
    assert states == {
        "3": ("fetch", "reinstall"),
        "4": ("fetch", "new"),  # an install cut short before anything was kept
        "8": ("fetch", "failed"),
        "9": ("fetch", "new"),
    }
    line = status_line(m)
    assert "failed 8 (gs://bkt/p/m/8.zip: not a zip file)" in line
    assert "new 9" in line
    assert "missing locally" not in line
    fetched = {r["version"]: r for r in planned.rows}
    assert fetched["m/8"]["state"] == "failed"
    assert fetched["m/9"]["download_bytes"] == 10


def test_a_failure_recorded_for_an_older_upload_is_not_shown(tmp_path: Path) -> None:
    old, new = obj("m/8.zip", generation=1), obj("m/8.zip", generation=2)
    snap = snapshot([new], failed={"m/8": LastFailure(fp(old), "bad")})
    (m,) = model_status(snap, plan_rows(config(tmp_path), snap))
    assert [p["state"] for p in m["pending"]] == ["new"]


def test_status_and_plan_agree_on_the_guard(tmp_path: Path) -> None:
    kept = obj("m/2.zip")
    managed = [Managed("m", "1", "x", bytes=7), Managed("m", "2", fp(kept))]
    snap = snapshot([kept], managed, on_disk=("m/1", "m/2"), max_delete=0)

    planned = plan_rows(config(tmp_path, max_delete=0), snap)
    (m,) = model_status(snap, planned)

    assert planned.code == 3
    assert planned.guard is not None
    assert "--max-delete 0" in planned.guard
    assert [(p["action"], p["version"]) for p in m["pending"]] == [("refuse-prune", "1")]
    assert status_line(m) == "out of sync: refused prune 1"
    assert [(r["action"], r["disk_bytes"]) for r in planned.rows] == [("refuse-prune", 7)]


def test_a_clean_plan_exits_0_and_status_is_in_sync(tmp_path: Path) -> None:
    o = obj("m/1.zip")
    snap = snapshot([o], [Managed("m", "1", fp(o))], on_disk=("m/1",))
    planned = plan_rows(config(tmp_path), snap)
    assert isinstance(planned, Planned)
    assert (planned.code, planned.guard, planned.rows) == (0, None, [])
    (m,) = model_status(snap, planned)
    assert m["in_sync"] is True
    assert status_line(m) == "in sync"
