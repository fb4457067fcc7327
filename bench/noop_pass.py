"""Time a no-op pass in-process: 1,000 zip versions already in sync, `sync_once` N times.

For A/B comparisons of two commits on one machine, with less noise than a whole `once` run
(no interpreter start-up, no imports):

    git worktree add /tmp/base <commit>
    .venv/bin/python bench/noop_pass.py --code /tmp/base
    .venv/bin/python bench/noop_pass.py
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose package to time")
    parser.add_argument("--passes", type=int, default=30)
    parser.add_argument("--versions", type=int, default=1000)
    args = parser.parse_args()
    sys.path[:0] = [str(args.code.resolve()), str(REPO)]

    from tests.support.emulator import Emulator
    from tests.support.gcs import Bucket, client
    from tests.support.models import make_zip

    with Emulator() as emulator:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
        bucket = Bucket(client(emulator.url), "noop")
        data = make_zip({"saved_model.pb": b"x"})
        for i in range(args.versions):
            bucket.put(f"p/m{i % 10}/{i}.zip", data)

        import gcs_model_sync
        from gcs_model_sync.config import Config, Source
        from gcs_model_sync.engine import sync_once
        from gcs_model_sync.retry import StopToken

        dest = Path(tempfile.mkdtemp(prefix="noop-pass-"))
        config = Config(source=Source.parse("gs://noop/p"), dest=dest)
        logging.disable(logging.CRITICAL)
        sync_once(config, StopToken())  # cold: installs everything
        seconds = [sync_once(config, StopToken()).seconds for _ in range(args.passes)]
        print(
            f"{gcs_model_sync.__file__}: no-op pass over {args.versions} versions, "
            f"median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s "
            f"({args.passes} passes)"
        )


if __name__ == "__main__":
    main()
