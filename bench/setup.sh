#!/usr/bin/env bash
# Install the benchmark's peer tools from Debian packages when they are missing.
# Never fails: a peer that cannot be installed is reported by bench/run.py as skipped.
set -u

missing=()
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v unzip >/dev/null 2>&1 || missing+=(unzip)
if [ ${#missing[@]} -eq 0 ]; then
  echo "bench/setup.sh: rclone and unzip present"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "bench/setup.sh: WARNING: not root and no sudo; not installing ${missing[*]}" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "bench/setup.sh: WARNING: no apt-get; install ${missing[*]} by hand" >&2
  exit 0
fi

echo "bench/setup.sh: installing ${missing[*]} with apt-get"
if "${as_root[@]}" apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}"; then
  echo "bench/setup.sh: installed ${missing[*]}"
else
  echo "bench/setup.sh: WARNING: apt-get failed; those peers will be skipped" >&2
fi
exit 0
