"""`make demo`: a first sync with no bucket and no credentials.

Starts the local GCS emulator, uploads a tiny model in the seed's zip format plus a tar.gz
version, runs `gcs-model-sync once` into ./demo-models, then shows `status`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.emulator import Emulator  # noqa: E402
from tests.support.gcs import Bucket, client  # noqa: E402
from tests.support.models import sample_files  # noqa: E402

BUCKET = "demo-models"
SOURCE = f"gs://{BUCKET}/models"
# Folder versions wait for their marker instead of --settle's 60 quiet seconds.
OPTIONS = ["--ready-marker", "_SUCCESS", "--settle", "0"]


def seed(url: str) -> Bucket:
    """The demo bucket on the emulator at `url`: a zip, a tar.gz and a folder version."""
    bucket = Bucket(client(url), BUCKET)
    bucket.put_zip("models/half_plus_two/0001.zip", sample_files("v1"), top="0001")
    bucket.put_tar("models/half_plus_two/0002.tar.gz", sample_files("v2"), top="0002", gz=True)
    bucket.put_folder("models/resnet/0007", sample_files("r7"))
    bucket.put("models/resnet/0007/_SUCCESS", b"")  # a folder upload says it is complete
    return bucket


def main() -> int:
    dest = Path(os.environ.get("DEMO_DEST", ROOT / "demo-models"))
    with Emulator() as emu:
        bucket = seed(emu.url)
        print(f"emulator on {emu.url} holds:")
        for key in bucket.object_names():
            print(f"  gs://{BUCKET}/{key}")
        env = {**os.environ, "STORAGE_EMULATOR_HOST": emu.url}
        args = ["--source", SOURCE, "--dest", str(dest), *OPTIONS]
        cli = [sys.executable, "-m", "gcs_model_sync"]
        print(f"\n$ gcs-model-sync once {' '.join(args)}", flush=True)
        code = subprocess.call([*cli, "once", *args], env=env)
        print(f"\n$ gcs-model-sync status {' '.join(args)}", flush=True)
        subprocess.call([*cli, "status", *args], env=env)
    print(f"\n{dest}:")
    for path in sorted(dest.rglob("*")):
        if ".gcs-model-sync" not in path.parts:
            print(f"  {path.relative_to(dest)}{'/' if path.is_dir() else ''}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
