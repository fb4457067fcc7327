"""Partial downloads on disk: their names, their records, what they hold, which are stale."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.retry import StopToken
from gcs_model_sync.source import checksum, partials
from gcs_model_sync.source.partials import Slice

MiB = 1024 * 1024


def obj(name: str = "m/1/w.bin", size: int = 100 * MiB, gen: int = 7, **kw: object) -> RemoteObject:
    fields: dict[str, object] = {"crc32c": "AAAAAA==", "md5": None, "updated": "", "encoding": None}
    fields.update(kw)
    return RemoteObject(name, gen, size, **fields)  # type: ignore[arg-type]


def test_partials_are_named_by_object_and_generation() -> None:
    assert partials.key(obj(gen=1)) != partials.key(obj(gen=2))
    assert partials.key(obj(name="a")) != partials.key(obj(name="b"))
    assert partials.key(obj(name="x" * 1024)).endswith(".7")
    assert len(partials.key(obj(name="x" * 1024))) < 64


def test_stale_partials_are_those_not_being_fetched() -> None:
    kept, changed, gone = obj("m/1/a", gen=2), obj("m/1/b", gen=5), obj("m/2/c")
    present = [
        partials.key(kept),
        partials.key(kept) + ".json",
        partials.key(obj("m/1/b", gen=4)),  # an older generation of an object being fetched
        partials.key(obj("m/1/b", gen=4)) + ".json",
        partials.key(gone),
    ]
    stale = partials.stale(present, [kept, changed])
    assert stale == sorted(present[2:])


def test_a_record_counts_only_if_it_covers_this_generation_exactly(tmp_path: Path) -> None:
    o = obj(size=10 * MiB)
    record = tmp_path / (partials.key(o) + partials.RECORD)

    def write(size: int, slices: list[list[int]]) -> None:
        doc = {"name": o.name, "generation": o.generation, "size": size, "crc32c": o.crc32c}
        record.write_text(json.dumps(doc | {"slices": slices}))

    write(o.size, [[0, 4 * MiB, MiB, 1], [4 * MiB, 10 * MiB, 2 * MiB, 2]])
    assert partials.on_disk(tmp_path, o) == 3 * MiB
    write(o.size, [[0, 4 * MiB, MiB, 1], [5 * MiB, 10 * MiB, 0, 0]])  # a gap
    assert partials.recorded(tmp_path, o) is None
    write(o.size + 1, [[0, o.size + 1, 0, 0]])  # another object under this name
    assert partials.on_disk(tmp_path, o) == 0


def test_a_partial_holds_its_allocated_bytes_and_removing_it_gives_them_back(
    tmp_path: Path,
) -> None:
    """A partial is a sparse file the size of its object: only what was written takes space,
    and that (not the record's claim) is what resuming it saves or removing it frees."""
    o = obj(size=10 * MiB)
    data = tmp_path / partials.key(o)
    with open(data, "wb") as f:
        f.truncate(o.size)
        f.write(b"x" * MiB)
    (tmp_path / (partials.key(o) + partials.RECORD)).write_text("{}")
    other = obj("m/1/other.bin")

    held = partials.held(tmp_path, [o, other])

    assert MiB <= held < 2 * MiB
    assert partials.held(tmp_path, [other]) == 0
    assert partials.remove(tmp_path, o) == held
    assert list(tmp_path.iterdir()) == []
    assert partials.remove(tmp_path, o) == 0


def test_a_saved_record_is_what_the_next_pass_resumes_from(tmp_path: Path) -> None:
    o = obj(size=10 * MiB)
    slices = [Slice(0, 4 * MiB, MiB, 11), Slice(4 * MiB, 10 * MiB, 2 * MiB, 22)]
    partials.save(tmp_path, o, slices)
    assert not (tmp_path / (partials.key(o) + partials.RECORD + ".tmp")).exists()
    assert partials.resumable(tmp_path, o) is None  # the record without its file
    with open(tmp_path / partials.key(o), "wb") as f:
        f.truncate(o.size)
    got = partials.resumable(tmp_path, o)
    assert got is not None
    assert [(s.start, s.end, s.got, s.crc) for s in got] == [
        (0, 4 * MiB, MiB, 11),
        (4 * MiB, 10 * MiB, 2 * MiB, 22),
    ]
    with open(tmp_path / partials.key(o), "r+b") as f:
        f.truncate(o.size - 1)  # a file cut short is not resumed, whatever its record says
    assert partials.resumable(tmp_path, o) is None


def test_check_keeps_only_the_ranges_whose_bytes_match_their_crc(tmp_path: Path) -> None:
    good, bad = b"a" * 1000, b"b" * 1000
    path = tmp_path / "f"
    path.write_bytes(good + bad + bytes(1000))
    slices = [
        Slice(0, 1000, 1000, checksum.extend(0, good)),
        Slice(1000, 2000, 500, checksum.extend(0, b"c" * 500)),  # the disk holds other bytes
        Slice(2000, 3000, 0, 0),
    ]
    fd = os.open(path, os.O_RDONLY)
    try:
        damaged = partials.check(fd, slices, StopToken())
    finally:
        os.close(fd)
    assert damaged == 500
    assert [s.progress for s in slices] == [(1000, checksum.extend(0, good)), (0, 0), (0, 0)]


def test_remove_stale_removes_only_what_is_not_being_fetched(tmp_path: Path) -> None:
    assert partials.remove_stale(tmp_path / "missing", []) == 0
    kept, old = obj("m/1/a", gen=2), obj("m/1/a", gen=1)
    for o in (kept, old):
        (tmp_path / partials.key(o)).write_bytes(b"x")
        (tmp_path / (partials.key(o) + partials.RECORD)).write_text("{}")
    assert partials.remove_stale(tmp_path, [kept]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [partials.key(kept), partials.key(kept) + partials.RECORD]
    )
