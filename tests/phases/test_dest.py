"""What --dest must be: the file system's refusals said as the other --dest problems."""

from __future__ import annotations

import errno
from pathlib import Path

from gcs_model_sync.errors import EXIT_FAILED, EXIT_USAGE
from gcs_model_sync.phases.dest import dest_error


def test_what_the_file_system_refuses_under_dest_is_said_as_the_other_dest_problems(
    tmp_path: Path,
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    below = dest_error(afile / "m", FileExistsError(errno.EEXIST, "File exists", str(afile)))
    read_only = dest_error(tmp_path, OSError(errno.EROFS, "Read-only file system", "x"))
    full = dest_error(tmp_path, OSError(errno.ENOSPC, "No space left on device", "x"))

    assert str(below) == f"--dest {afile / 'm'}: not a directory ({afile} is a file)"
    assert str(read_only) == f"--dest {tmp_path}: not writable (Read-only file system)"
    assert (below.exit_code, read_only.exit_code, full.exit_code) == (
        EXIT_USAGE,
        EXIT_USAGE,
        EXIT_FAILED,
    )
