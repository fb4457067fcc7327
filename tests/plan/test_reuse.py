"""Which files of an install are linked from an installed version: pure, from the listing
and what the state recorded when each version was published."""

from __future__ import annotations

from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.local.scan import LocalView
from gcs_model_sync.local.state import PENDING, Managed
from gcs_model_sync.plan.reuse import Link, crc_of, plan_reuse
from tests.support.plans import P, plan_of, view

AAA, BBB, CCC = "AAAAAA==", "BBBBBB==", "CCCCCC=="


def listed(key: str, size: int, crc: str | None, encoding: str | None = None) -> RemoteObject:
    return RemoteObject(P + key, 1, size, crc, encoding=encoding)


def installed(version: str, sums: dict[str, tuple[int, str]], model: str = "m") -> Managed:
    return Managed(model, version, "fp", sum(s for s, _ in sums.values()), 0.0, None, sums)


V1 = {"a.bin": (300, AAA), "sub/b.bin": (200, BBB), "c.bin": (100, CCC)}


def test_files_with_the_same_size_and_crc_are_linked_and_the_changed_one_is_not() -> None:
    objects = [listed("m/2/a.bin", 300, AAA), listed("m/2/sub/b.bin", 200, BBB),
               listed("m/2/c.bin", 120, "DDDDDD==")]  # fmt: skip
    [reuse] = plan_of(objects, view([installed("1", V1)], {"m/1"})).reuse
    assert (reuse.version, reuse.source.id) == ("m/2", "m/1")
    assert reuse.links == (
        Link("a.bin", "a.bin", 300, AAA),
        Link("sub/b.bin", "sub/b.bin", 200, BBB),
    )
    assert (reuse.files, reuse.linked_bytes, reuse.download_bytes) == (3, 500, 120)
    assert reuse.describe() == "2 of 3 files linked from m/1, 120 B to download"


def test_a_same_size_file_with_another_crc_is_not_linked() -> None:
    objects = [listed("m/2/a.bin", 300, BBB)]
    assert plan_of(objects, view([installed("1", V1)], {"m/1"})).reuse == ()


def test_a_file_moved_elsewhere_is_linked_from_where_it_was() -> None:
    objects = [listed("m/2/moved/a.bin", 300, AAA), listed("m/2/copy.bin", 300, AAA)]
    [reuse] = plan_of(objects, view([installed("1", V1)], {"m/1"})).reuse
    assert [(ln.relpath, ln.source) for ln in reuse.links] == [
        ("moved/a.bin", "a.bin"),
        ("copy.bin", "a.bin"),
    ]


def test_the_installed_version_sharing_the_most_bytes_is_the_source_the_newest_of_equals() -> None:
    objects = [listed("m/5/a.bin", 300, AAA), listed("m/5/c.bin", 100, CCC)]
    one = installed("1", {"a.bin": (300, AAA)})
    two = installed("2", {"c.bin": (100, CCC)})
    three = installed("3", {"a.bin": (300, AAA)})
    local = view([one, two, three], {"m/1", "m/2", "m/3"})
    [reuse] = plan_of(objects, local).reuse
    assert reuse.source.id == "m/3"


def test_only_installed_versions_of_ours_of_the_same_model_with_recorded_sums_count() -> None:
    objects = [listed("m/5/a.bin", 300, AAA)]
    sums = {"a.bin": (300, AAA)}
    gone = installed("1", sums)  # its folder was removed by hand
    pending = Managed("m", "2", PENDING, sums=sums)  # a crash mid-publish
    other_model = installed("3", sums, model="n")
    archive = Managed("m", "4", "zip:1")  # no sums: installed from an archive
    local = view([gone, pending, other_model, archive], {"m/2", "n/3", "m/4"})
    assert plan_of(objects, local).reuse == ()


def test_a_version_folder_that_is_a_symbolic_link_is_not_linked_from() -> None:
    objects = [listed("m/5/a.bin", 300, AAA)]
    m = installed("1", {"a.bin": (300, AAA)})
    local = LocalView({m.id: m}, frozenset({m.id}), links=frozenset({m.id}))
    assert plan_reuse((), local) == ()
    assert plan_of(objects, local).reuse == ()


def test_a_version_being_replaced_links_from_its_own_installed_files() -> None:
    objects = [listed("m/1/a.bin", 300, AAA), listed("m/1/c.bin", 120, "DDDDDD==")]
    [reuse] = plan_of(objects, view([installed("1", V1)], {"m/1"})).reuse
    assert (reuse.version, reuse.source.id, len(reuse.links)) == ("m/1", "m/1", 1)


def test_archives_and_gzip_encoded_or_empty_objects_are_never_linked() -> None:
    local = view([installed("1", {"a.bin": (300, AAA), "e": (0, AAA)})], {"m/1"})
    assert plan_of([listed("m/2.zip", 300, AAA)], local).reuse == ()
    encoded = listed("m/3/a.bin", 300, AAA, encoding="gzip")
    assert crc_of(encoded) is None
    assert plan_of([encoded, listed("m/3/e", 0, AAA)], local).reuse == ()
    assert plan_of([listed("m/4/a.bin", 300, None)], local).reuse == ()


def test_linking_off_plans_no_links() -> None:
    objects = [listed("m/2/a.bin", 300, AAA)]
    local = view([installed("1", V1)], {"m/1"})
    assert plan_of(objects, local, link_unchanged=False).reuse == ()
    assert len(plan_of(objects, local).reuse) == 1
