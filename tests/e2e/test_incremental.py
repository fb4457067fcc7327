"""Incremental versions: a folder-form version whose files match an installed version's by
size and CRC-32C hard-links them instead of downloading them (rsync --link-dest).

Each scenario runs the real CLI against the emulator; bytes downloaded are the pass's own
count (`pass_done`'s `bytes`), and a link is the same inode in both versions.
"""

from __future__ import annotations

import json
import os

from tests.e2e.conftest import Sync

A, B = b"a" * 300_000, b"b" * 200_000
OLD_C, NEW_C = b"c" * 100_000, b"C" * 120_000
V1 = {"a.bin": A, "sub/b.bin": B, "c.bin": OLD_C}
V2 = {"a.bin": A, "sub/b.bin": B, "c.bin": NEW_C}


def downloaded(stderr: str) -> int:
    """The bytes the pass read from the bucket, from its JSON summary line."""
    [done] = [json.loads(x) for x in stderr.splitlines() if '"pass_done"' in x]
    return int(done["bytes"])


def same_file(sync: Sync, rel: str, one: str, other: str) -> bool:
    return os.stat(sync.dest / one / rel).st_ino == os.stat(sync.dest / other / rel).st_ino


def installed_v1(sync: Sync, *extra: str) -> None:
    sync.bucket.put_folder(sync.key("m/0001"), V1)
    first = sync.once(*extra)
    assert first.returncode == 0, first.stderr
    assert sync.version("m/0001") == V1


def test_a_new_version_with_one_changed_file_downloads_only_that_file_and_links_the_rest(
    sync: Sync,
) -> None:
    installed_v1(sync)
    sync.bucket.put_folder(sync.key("m/0002"), V2)

    result = sync.once("--log-format", "json")

    assert result.returncode == 0, result.stderr
    assert sync.version("m/0002") == V2
    assert sync.version("m/0001") == V1
    assert same_file(sync, "a.bin", "m/0001", "m/0002")
    assert same_file(sync, "sub/b.bin", "m/0001", "m/0002")
    assert not same_file(sync, "c.bin", "m/0001", "m/0002")
    assert downloaded(result.stderr) == len(NEW_C)


def test_plan_says_how_many_files_are_linked_and_how_much_is_left_to_download(
    sync: Sync,
) -> None:
    installed_v1(sync)
    sync.bucket.put_folder(sync.key("m/0002"), V2)

    text = sync.run("plan")
    doc = sync.run("plan", "--output", "json")

    assert text.returncode == 0, text.stderr
    assert "2 of 3 files linked from m/0001, 117.2 KiB to download" in text.stdout
    [row] = [r for r in json.loads(doc.stdout)["actions"] if r["version"] == "m/0002"]
    assert (row["linked_from"], row["linked_files"]) == ("m/0001", 2)
    assert (row["linked_bytes"], row["download_bytes"]) == (len(A) + len(B), len(NEW_C))


def test_a_locally_modified_file_is_downloaded_not_linked(sync: Sync) -> None:
    installed_v1(sync)
    tampered = sync.dest / "m" / "0001" / "a.bin"
    stat = tampered.stat()
    tampered.write_bytes(b"x" * len(A))  # same size, same mtime: only its bytes tell
    os.utime(tampered, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    sync.bucket.put_folder(sync.key("m/0002"), V2)

    result = sync.once("--log-format", "json")

    assert result.returncode == 0, result.stderr
    assert sync.version("m/0002") == V2
    assert not same_file(sync, "a.bin", "m/0001", "m/0002")
    assert same_file(sync, "sub/b.bin", "m/0001", "m/0002")
    assert downloaded(result.stderr) == len(A) + len(NEW_C)


def test_linking_off_downloads_every_file(sync: Sync) -> None:
    installed_v1(sync)
    sync.bucket.put_folder(sync.key("m/0002"), V2)

    result = sync.once("--log-format", "json", "--no-link-unchanged")

    assert result.returncode == 0, result.stderr
    assert sync.version("m/0002") == V2
    assert not any(same_file(sync, rel, "m/0001", "m/0002") for rel in V2)
    assert downloaded(result.stderr) == sum(map(len, V2.values()))


def test_linking_off_by_its_variable_too(sync: Sync) -> None:
    installed_v1(sync)
    sync.bucket.put_folder(sync.key("m/0002"), V2)

    result = sync.once("--log-format", "json", env={"GCS_MODEL_SYNC_LINK_UNCHANGED": "false"})

    assert result.returncode == 0, result.stderr
    assert downloaded(result.stderr) == sum(map(len, V2.values()))


def test_a_file_moved_to_another_folder_is_linked_from_where_it_was(sync: Sync) -> None:
    installed_v1(sync)
    sync.bucket.put_folder(sync.key("m/0002"), {"moved/a.bin": A, "c.bin": NEW_C})

    result = sync.once("--log-format", "json")

    assert result.returncode == 0, result.stderr
    moved = sync.dest / "m" / "0002" / "moved" / "a.bin"
    assert moved.read_bytes() == A
    assert moved.stat().st_ino == (sync.dest / "m" / "0001" / "a.bin").stat().st_ino
    assert downloaded(result.stderr) == len(NEW_C)


def test_pruning_the_version_linked_from_leaves_the_new_one_whole(sync: Sync) -> None:
    installed_v1(sync, "--keep", "1")
    sync.bucket.put_folder(sync.key("m/0002"), V2)

    result = sync.once("--keep", "1", "--log-format", "json")

    assert result.returncode == 0, result.stderr
    assert sync.versions("m") == ["0002"]
    assert sync.version("m/0002") == V2
    assert downloaded(result.stderr) == len(NEW_C)


def test_a_version_replaced_in_place_links_from_its_own_old_files(sync: Sync) -> None:
    installed_v1(sync)
    sync.bucket.put(sync.key("m/0001/c.bin"), NEW_C)  # a re-upload of one file

    result = sync.once("--log-format", "json")

    assert result.returncode == 0, result.stderr
    assert sync.version("m/0001") == V2
    assert downloaded(result.stderr) == len(NEW_C)
