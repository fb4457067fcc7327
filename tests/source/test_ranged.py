"""Which objects are sliced, and how (pure parts)."""

from __future__ import annotations

from pathlib import Path

from gcs_model_sync.config import Config, Source
from gcs_model_sync.layout import RemoteObject
from gcs_model_sync.source import ranged

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


def test_archives_are_sliced_only_from_a_higher_threshold() -> None:
    c = config(slice_size=16 * MiB, slice_threshold=32 * MiB)
    big = 32 * MiB * ranged.ARCHIVE_FACTOR
    assert ranged.wanted(obj(size=50 * MiB), c)
    assert not ranged.wanted(obj(size=50 * MiB), c, archive=True)
    assert not ranged.wanted(obj(size=big - 1), c, archive=True)
    assert ranged.wanted(obj(size=big), c, archive=True)
