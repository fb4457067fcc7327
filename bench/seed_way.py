"""The seed project's way, as a peer: download each object in turn, then extract it in place.

Run as a script (its own process, so its time and peak RSS compare with the CLIs'):
    python bench/seed_way.py --endpoint URL --bucket B --prefix P --dest DIR --tmp DIR
Archives `P/MODEL/NNNN.zip` are unpacked into `DEST/MODEL/` (they hold `NNNN/`); the seed only
knew zips, `.tar.gz` gets the same treatment with `tarfile`. Folder-form objects are
downloaded straight to `DEST/MODEL/NNNN/...`.
"""

from __future__ import annotations

import argparse
import tarfile
import zipfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--tmp", type=Path, required=True)
    args = parser.parse_args()

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="test",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": args.endpoint},
    )
    prefix = args.prefix.rstrip("/") + "/"
    args.tmp.mkdir(parents=True, exist_ok=True)
    for blob in client.list_blobs(args.bucket, prefix=prefix):
        rel = blob.name[len(prefix) :]
        if rel.endswith("/"):
            continue
        model_dir = args.dest / rel.split("/", 1)[0]
        model_dir.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".zip"):
            local = args.tmp / Path(rel).name
            blob.download_to_filename(str(local))
            with zipfile.ZipFile(local) as zf:
                zf.extractall(model_dir)  # noqa: S202  # as the seed does
            local.unlink()
        elif rel.endswith((".tar.gz", ".tgz", ".tar")):
            local = args.tmp / Path(rel).name
            blob.download_to_filename(str(local))
            with tarfile.open(local) as tf:
                tf.extractall(model_dir, filter="data")
            local.unlink()
        else:
            target = args.dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
