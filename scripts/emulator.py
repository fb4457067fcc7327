"""`make emulator`: a local GCS emulator holding the demo bucket, left running for trying the
CLI by hand.

Starts fake-gcs-server on 127.0.0.1 (port EMULATOR_PORT, 4443 by default; 0 picks a free
one), uploads the demo models, and prints the environment and the commands to paste into
another shell. Runs in the foreground until Ctrl-C (or SIGTERM); the bucket lives in memory
and goes with it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.demo import BUCKET, OPTIONS, SOURCE, seed  # noqa: E402
from tests.support.emulator import Emulator, free_port  # noqa: E402


def _cli() -> str:
    """How to run the CLI from the repository root: the virtualenv's entry point."""
    entry = Path(sys.executable).parent / "gcs-model-sync"
    try:
        return str(entry.relative_to(Path.cwd()))
    except ValueError:
        return str(entry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMULATOR_PORT", 4443)))
    parser.add_argument("--dest", default=os.environ.get("EMULATOR_DEST", "./try-models"))
    args = parser.parse_args(argv)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    emu = Emulator(port=args.port or free_port())
    try:
        emu.start()
    except RuntimeError as exc:
        print(f"cannot start the emulator on port {emu.port}: {exc} (try EMULATOR_PORT=0)")
        return 1
    try:
        bucket = seed(emu.url)
        cli = _cli()
        common = shlex.join(["--source", SOURCE, "--dest", args.dest, *OPTIONS])
        print(f"fake-gcs-server on {emu.url}, holding:")
        for key in bucket.object_names():
            print(f"  gs://{BUCKET}/{key}")
        print("\nIn another shell, from this directory:\n")
        print(f"  export STORAGE_EMULATOR_HOST={emu.url}")
        print(f"  {cli} plan {common}")
        print(f"  {cli} once {common}")
        print(f"  {cli} status {common}")
        print("\nA new version (any zip of a model folder), then plan again:\n")
        print(
            '  curl -sS -X POST --data-binary @model.zip "$STORAGE_EMULATOR_HOST/upload/'
            f'storage/v1/b/{BUCKET}/o?uploadType=media&name=models/half_plus_two/0003.zip"'
        )
        print(f"\n(kill -TERM {os.getpid()} works as well as Ctrl-C)")
        print("Ctrl-C stops the emulator.", flush=True)
        stopped.wait()
    finally:
        emu.stop()
    print("emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
