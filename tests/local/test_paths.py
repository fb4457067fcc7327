"""Where things live under DEST, and making the tool's own folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs_model_sync.layout import STATE_DIR
from gcs_model_sync.local.paths import Paths
from gcs_model_sync.local.safepath import OwnFolderLinked


def test_paths_live_under_dest(tmp_path: Path) -> None:
    p = Paths(tmp_path / "d")
    assert p.state_dir == tmp_path / "d" / STATE_DIR
    assert p.state_file.parent == p.staging.parent == p.trash.parent == p.state_dir
    assert p.version_dir("m/x", "0002") == tmp_path / "d" / "m" / "x" / "0002"
    assert p.version_dir("", "0002") == tmp_path / "d" / "0002"
    p.ensure()
    assert p.staging.is_dir()
    assert p.trash.is_dir()
    p.ensure()  # twice is fine


@pytest.mark.parametrize("name", [STATE_DIR, f"{STATE_DIR}/staging", f"{STATE_DIR}/trash",
                                  f"{STATE_DIR}/partial", f"{STATE_DIR}/state.json",
                                  f"{STATE_DIR}/lock"])  # fmt: skip
def test_ensure_refuses_a_linked_folder_or_file_of_its_own_and_makes_nothing_through_it(
    tmp_path: Path, name: str
) -> None:
    p = Paths(tmp_path / "models")
    (p.dest / name).parent.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (p.dest / name).symlink_to(outside)
    with pytest.raises(OwnFolderLinked) as caught:
        p.ensure()
    assert str(caught.value).startswith(f"{p.dest / name}: a symbolic link")
    assert list(outside.iterdir()) == []


def test_ensure_follows_dest_itself_when_it_is_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "models").symlink_to(tmp_path / "real")
    Paths(tmp_path / "models").ensure()
    assert (tmp_path / "real" / STATE_DIR / "staging").is_dir()
