"""W7-incremental: a folder-form SavedModel of 8 variables shards (and its 256 KiB graph)
installed, then the next version, which changes one shard: the second install timed with
--link-unchanged and with --no-link-unchanged, and the bytes each read from the bucket.

Both versions are in the bucket from the start (one emulator load, one generation each). A
first pass installs both; before each timed pass, `0002` and its state entry are removed, so
the pass starts from what a pass that installed only `0001` leaves: `0001` on disk and in the
state file with its files' sizes and CRC-32C. `0001`'s files are in the page cache then (they
were just written or read), so the CRC check of a linked file reads memory; the `cold` runs
evict them first (posix_fadvise, those files alone), and the check reads the disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.emulator import BenchEmulator
from bench.tools import run_measured
from tests.support.cli import cli_env

MiB = 1 << 20
BUCKET, PREFIX, MODEL = "w7-incremental", "bench", "model0"
FILES = 8


def _write(path: Path, size: int) -> str:
    """`size` random bytes (incompressible); their sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for at in range(0, size, MiB):
            chunk = os.urandom(min(MiB, size - at))
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _data(data_dir: Path, file_size: int) -> dict[str, str]:
    """Versions 0001 and 0002 (the last shard changed); 0002's sha256 by file name."""
    root = data_dir / BUCKET / PREFIX / MODEL
    expected = {
        "saved_model.pb": _write(root / "0001" / "saved_model.pb", 256 << 10),
        "variables/variables.index": _write(root / "0001" / "variables/variables.index", 16 << 10),
    }
    shutil.copytree(root / "0001", root / "0002")  # the graph and index are the same in both
    for i in range(FILES):
        name = f"variables/variables.data-{i:05d}-of-{FILES:05d}"
        first = _write(root / "0001" / name, file_size)
        if i == FILES - 1:
            expected[name] = _write(root / "0002" / name, file_size)
        else:
            (root / "0002" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / "0001" / name, root / "0002" / name)
            expected[name] = first
    return expected


def _forget_0002(dest: Path) -> None:
    """DEST as a pass that installed only 0001 leaves it."""
    shutil.rmtree(dest / MODEL / "0002", ignore_errors=True)
    state_file = dest / ".gcs-model-sync" / "state.json"
    state = json.loads(state_file.read_text())
    state["versions"].pop(f"{MODEL}/0002", None)
    state_file.write_text(json.dumps(state))


def _pass(cmd: list[str], log: Path, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    os.sync()
    m = run_measured(cmd, log, env=env, cwd=cwd)
    passes = [json.loads(x) for x in log.read_text().splitlines() if '"pass_done"' in x]
    done = (
        passes[-1] if m.returncode != 2 and passes else {"bytes": 0, "seconds": 0, "published": []}
    )
    return {"wall": m.wall, "cpu": m.cpu, "rc": m.returncode, "bytes": done["bytes"],
            "pass_seconds": done["seconds"], "published": done["published"]}  # fmt: skip


def _evict(folder: Path) -> None:
    """Drop `folder`'s files from the page cache (theirs alone: the machine is shared), so
    that the CRC check of a linked file reads the disk."""
    os.sync()
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _check(dest: Path, expected: dict[str, str]) -> list[str]:
    problems = []
    for name, digest in expected.items():
        path = dest / MODEL / "0002" / name
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != digest:
                problems.append(f"{path}: wrong content")
    return problems


def w7_incremental(
    workdir: Path, scale: float, runs: int, python: str, repo: Path, keep: bool = False
) -> tuple[str, dict[str, Any]]:
    """The W7 line for the report, and its record."""
    base = workdir / "W7"
    shutil.rmtree(base, ignore_errors=True)
    file_size = max(int(128 * MiB * scale), MiB)
    start = time.perf_counter()
    expected = _data(base / "data", file_size)
    print(f"W7: generated 2 x {FILES} x {file_size / MiB:.0f} MiB in "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    emu = BenchEmulator(base, base / "data", "filesystem")
    dest, log = base / "dest", base / "log.txt"
    samples: dict[str, list[dict[str, Any]]] = {"on": [], "cold": [], "off": []}
    problems: list[str] = []
    try:
        emu.start(timeout=120 + 2 * FILES * file_size / (20 * MiB))
        env = cli_env(emu.url)
        cmd = [python, "-m", "gcs_model_sync", "once", "--source", f"gs://{BUCKET}/{PREFIX}",
               "--dest", str(dest), "--log-format", "json"]  # fmt: skip
        first = _pass(cmd, log, env, repo)
        if first["rc"] != 0 or len(first["published"]) != 2:
            problems.append(f"first pass: exit status {first['rc']}, published "
                            f"{first['published']} (see {log})")  # fmt: skip
        for rep in range(runs if not problems else 0):
            order = ("on", "cold", "off") if rep % 2 == 0 else ("off", "cold", "on")
            for mode in order:
                _forget_0002(dest)
                if mode == "cold":
                    _evict(dest / MODEL / "0001")
                flag = "--no-link-unchanged" if mode == "off" else "--link-unchanged"
                sample = _pass([*cmd, flag], log, env, repo)
                trouble = _check(dest, expected)
                if sample["rc"] or sample["published"] != [f"{MODEL}/0002"]:
                    trouble.append(f"exit status {sample['rc']}, published {sample['published']}")
                problems += trouble
                samples[mode].append(sample)
                print(f"  W7-incremental {rep:>5} link {mode:<5} {sample['wall']:8.2f} s  "
                      f"read {sample['bytes'] / MiB:7.1f} MiB  "
                      f"{'ok' if not trouble else 'FAILED: ' + '; '.join(trouble)}")  # fmt: skip
    finally:
        emu.stop()
    if not problems and not keep:
        shutil.rmtree(base, ignore_errors=True)

    def median(mode: str, key: str) -> float:
        values = sorted(s[key] for s in samples[mode])
        return values[len(values) // 2] if values else float("nan")

    line = (
        f"W7-incremental (a {FILES} x {file_size / MiB:.0f} MiB folder-form version, then the "
        f"next with 1 file changed; second install, median of {runs}): --link-unchanged "
        f"{median('on', 'wall'):.2f} s wall ({median('on', 'pass_seconds'):.2f} s in the pass), "
        f"{median('on', 'bytes') / MiB:.0f} MiB read, {median('cold', 'wall'):.2f} s wall "
        f"({median('cold', 'pass_seconds'):.2f} s in the pass) with 0001's files evicted from the "
        f"page cache first (its CRC check reads the disk); --no-link-unchanged "
        f"{median('off', 'wall'):.2f} s wall ({median('off', 'pass_seconds'):.2f} s in the "
        f"pass), {median('off', 'bytes') / MiB:.0f} MiB read"
        + (f"; FAILED: {'; '.join(problems)}" if problems else "")
    )
    return line, {"samples": samples, "problems": problems, "file_size": file_size}
