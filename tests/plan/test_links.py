"""links.refuse: what a symbolic link below DEST keeps out of the plan."""

from __future__ import annotations

from pathlib import Path

from gcs_model_sync.layout import Form, RemoteObject
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan.actions import Install, Prune
from gcs_model_sync.plan.files_plan import FileChange
from gcs_model_sync.plan.links import refuse
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.plan.versions import RemoteVersion
from gcs_model_sync.report import FailureKind


def _version(model: str, version: str) -> RemoteVersion:
    obj = RemoteObject(f"models/{model}/{version}.zip", 1, 10)
    return RemoteVersion(model, version, Form.ZIP, (), f"zip:{obj.generation}")


def _plan() -> Plan:
    return Plan(
        installs=(
            Install(_version("m", "2"), "new"),
            Install(_version("n", "2"), "new"),
            Install(_version("team/ranker", "5"), "new"),
            Install(_version("team/scorer", "1"), "new"),
            Install(_version("v", "3"), "changed"),
        ),
        prunes=(
            Prune(Managed("m", "1", "zip:1"), "removed from the bucket"),
            Prune(Managed("n", "1", "zip:1"), "removed from the bucket"),
        ),
        files=(
            FileChange("m", "config.pbtxt", RemoteObject("models/m/config.pbtxt", 1, 3), "new"),
            FileChange("n", "config.pbtxt", None, "removed from the bucket"),
        ),
    )


def test_links_take_their_models_actions_out_of_the_plan_and_name_each_link(
    tmp_path: Path,
) -> None:
    links = {"m", "team", "v/3"}
    plan, failures = refuse(_plan(), tmp_path, links)
    assert [i.version.id for i in plan.installs] == ["n/2"]
    assert [p.managed.id for p in plan.prunes] == ["n/1"]
    assert [f.id for f in plan.files] == ["n/config.pbtxt"]
    assert [(f.model, f.version, f.kind) for f in failures] == [
        ("m", None, FailureKind.LINK),
        ("team/ranker", None, FailureKind.LINK),
        ("team/scorer", None, FailureKind.LINK),
        ("v", "v/3", FailureKind.LINK),
    ]
    assert failures[0].message == (
        f"{tmp_path / 'm'}: a symbolic link below --dest; not followed; "
        "refusing to install m/2, prune m/1, write m/config.pbtxt"
    )


def test_a_link_of_another_model_refuses_nothing(tmp_path: Path) -> None:
    """`m2` and `tea` are not folders above `m` or `team/ranker`: the plan is unchanged."""
    before = _plan()
    plan, failures = refuse(before, tmp_path, {"m2", "tea", "n/3"})
    assert plan is before
    assert failures == ()
