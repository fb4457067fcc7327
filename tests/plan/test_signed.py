"""What the manifests beside a version decide from the listing alone: --require-digest and
--require-signature reject a version without one, naming the missing object."""

from __future__ import annotations

from gcs_model_sync.layout import manifests
from gcs_model_sync.local.state import Managed
from gcs_model_sync.plan import deletions
from gcs_model_sync.plan.plan import Plan
from gcs_model_sync.plan.signed import Required, checked
from gcs_model_sync.report import rejected
from tests.support.plans import P, fp, installs, obj, plan_of, view

SOURCE = "gs://b/p/"


def planned(keys: list[str], required: Required, **options: object) -> Plan:
    objects = [obj(k) for k in keys]
    return plan_of(
        objects,
        options.pop("local", view()),  # type: ignore[arg-type]
        manifests=manifests(objects, P),
        required=required,
        source=SOURCE,
        **options,
    )


def test_require_signature_rejects_an_unsigned_version_naming_the_missing_object() -> None:
    plan = planned(["m/1.zip", "m/1.sig", "m/2/a.pb"], Required(signature=True, key=True))
    assert installs(plan) == {"m/1": "new"}
    [r] = plan.rejections
    assert r.id == "m/2"
    assert r.message == (
        "gs://b/p/m/2.sig: missing; --require-signature installs only signed versions"
    )


def test_require_digest_rejects_a_version_without_its_sha256() -> None:
    plan = planned(["m/1.zip", "m/1.sig", "m/2.zip", "m/2.sha256"], Required(digest=True))
    assert installs(plan) == {"m/2": "new"}
    [r] = plan.rejections
    assert r.message.startswith("gs://b/p/m/1.sha256: missing; --require-digest")


def test_without_requirements_a_version_without_manifests_installs() -> None:
    plan = planned(["m/1.zip", "m/2.zip", "m/2.sig"], Required())
    assert installs(plan) == {"m/1": "new", "m/2": "new"}
    assert plan.rejections == ()


def test_an_installed_unsigned_version_is_rejected_too_and_never_pruned_for_it() -> None:
    """Fail closed for what is not installed, never by deleting what is served."""
    have = Managed("m", "1", fp(obj("m/1.zip")))
    local = view([have], ["m/1"])
    plan = planned(["m/1.zip", "m/2.zip"], Required(signature=True, key=True), keep=1, local=local)
    assert installs(plan) == {}
    assert [r.id for r in plan.rejections] == ["m/1", "m/2"]
    decision = deletions.decide(plan, (rejected(r) for r in plan.rejections))
    assert decision.prune == ()
    assert [p.managed.id for p in decision.held] == ["m/1"]


def test_checked_names_the_manifests_that_will_be_checked() -> None:
    plan = planned(["m/1.zip", "m/1.sha256", "m/1.sig", "n/3/x"], Required())
    by_id = {i.version.id: i.version for i in plan.installs}
    assert checked(by_id["m/1"], Required(key=True)) == ["m/1.sha256", "m/1.sig"]
    assert checked(by_id["m/1"], Required()) == ["m/1.sha256"]  # no key: V.sig unchecked
    assert checked(by_id["n/3"], Required(key=True)) == []
