"""Which objects are sliced, how, and which partial downloads a pass removes (pure parts)."""

from __future__ import annotations

import json
from pathlib import Path

from gcs_model_sync import ranged
from gcs_model_sync.config import Config, Source
from gcs_model_sync.layout import RemoteObject

MiB = 1024 * 1024


def obj(name: str = "m/1/w.bin", size: int = 100 * MiB, gen: int = 7, **kw: object) -> RemoteObject:
    fields: dict[str, object] = {"crc32c": "AAAAAA==", "md5": None, "updated": "", "encoding": None}
    fields.update(kw)
    return RemoteObject(name, gen, size, **fields)  # type: ignore[arg-type]


def config(**kw: object) -> Config:
    return Config(Source.parse("gs://bkt/p"), Path("/nonexistent-dest"), **kw)  # type: ignore[arg-type]


def test_objects_from_the_threshold_up_are_sliced() -> None:
    c = config(slice_size=16 * MiB, slice_threshold=32 * MiB)
    assert ranged.wanted(obj(size=32 * MiB), c)
    assert not ranged.wanted(obj(size=32 * MiB - 1), c)


def test_an_object_of_one_slice_or_less_is_never_sliced() -> None:
    c = config(slice_size=16 * MiB, slice_threshold=0)
    assert not ranged.wanted(obj(size=16 * MiB), c)
    assert ranged.wanted(obj(size=16 * MiB + 1), c)


def test_objects_without_crc32c_or_stored_gzip_are_read_in_one_stream() -> None:
    c = config()
    assert not ranged.wanted(obj(crc32c=None, md5="x"), c)
    assert not ranged.wanted(obj(encoding="gzip"), c)
    assert ranged.wanted(obj(encoding="identity"), c)


def test_cut_covers_the_object_exactly_once() -> None:
    slices = ranged.cut(10 * MiB + 5, 4 * MiB)
    assert [(s.start, s.end) for s in slices] == [
        (0, 4 * MiB),
        (4 * MiB, 8 * MiB),
        (8 * MiB, 10 * MiB + 5),
    ]


def test_partials_are_named_by_object_and_generation() -> None:
    assert ranged.key(obj(gen=1)) != ranged.key(obj(gen=2))
    assert ranged.key(obj(name="a")) != ranged.key(obj(name="b"))
    assert ranged.key(obj(name="x" * 1024)).endswith(".7")
    assert len(ranged.key(obj(name="x" * 1024))) < 64


def test_stale_partials_are_those_not_being_fetched() -> None:
    kept, changed, gone = obj("m/1/a", gen=2), obj("m/1/b", gen=5), obj("m/2/c")
    present = [
        ranged.key(kept),
        ranged.key(kept) + ".json",
        ranged.key(obj("m/1/b", gen=4)),  # an older generation of an object being fetched
        ranged.key(obj("m/1/b", gen=4)) + ".json",
        ranged.key(gone),
    ]
    stale = ranged.stale(present, [kept, changed])
    assert stale == sorted(present[2:])


def test_archives_are_sliced_only_from_a_higher_threshold() -> None:
    c = config(slice_size=16 * MiB, slice_threshold=32 * MiB)
    big = 32 * MiB * ranged.ARCHIVE_FACTOR
    assert ranged.wanted(obj(size=50 * MiB), c)
    assert not ranged.wanted(obj(size=50 * MiB), c, archive=True)
    assert not ranged.wanted(obj(size=big - 1), c, archive=True)
    assert ranged.wanted(obj(size=big), c, archive=True)


def test_a_record_counts_only_if_it_covers_this_generation_exactly(tmp_path: Path) -> None:
    o = obj(size=10 * MiB)
    record = tmp_path / (ranged.key(o) + ranged.RECORD)

    def write(size: int, slices: list[list[int]]) -> None:
        doc = {"name": o.name, "generation": o.generation, "size": size, "crc32c": o.crc32c}
        record.write_text(json.dumps(doc | {"slices": slices}))

    write(o.size, [[0, 4 * MiB, MiB, 1], [4 * MiB, 10 * MiB, 2 * MiB, 2]])
    assert ranged.on_disk(tmp_path, o) == 3 * MiB
    write(o.size, [[0, 4 * MiB, MiB, 1], [5 * MiB, 10 * MiB, 0, 0]])  # a gap
    assert ranged.recorded(tmp_path, o) is None
    write(o.size + 1, [[0, o.size + 1, 0, 0]])  # another object under this name
    assert ranged.on_disk(tmp_path, o) == 0


def test_a_partial_holds_its_allocated_bytes_and_removing_it_gives_them_back(
    tmp_path: Path,
) -> None:
    """A partial is a sparse file the size of its object: only what was written takes space,
    and that (not the record's claim) is what resuming it saves or removing it frees."""
    o = obj(size=10 * MiB)
    data = tmp_path / ranged.key(o)
    with open(data, "wb") as f:
        f.truncate(o.size)
        f.write(b"x" * MiB)
    (tmp_path / (ranged.key(o) + ranged.RECORD)).write_text("{}")
    other = obj("m/1/other.bin")

    held = ranged.held(tmp_path, [o, other])

    assert MiB <= held < 2 * MiB
    assert ranged.held(tmp_path, [other]) == 0
    assert ranged.remove(tmp_path, o) == held
    assert list(tmp_path.iterdir()) == []
    assert ranged.remove(tmp_path, o) == 0
