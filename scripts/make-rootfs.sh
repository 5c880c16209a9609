#!/usr/bin/env bash
# Builds a real Debian root filesystem (bookworm, minbase) for the benchmarks, once:
# DIR appears complete or not at all (built in DIR.partial, then renamed).
# Usage: scripts/make-rootfs.sh DIR     (as root; installs debootstrap when missing)
set -euo pipefail
dir=${1:?usage: make-rootfs.sh DIR}
if [ -d "$dir" ]; then
  echo "rootfs already built: $dir"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "make-rootfs.sh: debootstrap needs root" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
partial="$dir.partial"
rm -rf "$partial"
mkdir -p "$(dirname "$dir")"
debootstrap --variant=minbase bookworm "$partial" >"$partial.log" 2>&1 || {
  echo "make-rootfs.sh: debootstrap failed, see $partial.log" >&2
  exit 1
}
# Trim what a packed image would not carry: the package cache and transient state.
rm -rf "$partial/var/cache/apt/archives/"*.deb "$partial/proc/"* "$partial/sys/"* "$partial/dev/"*
mv "$partial" "$dir"
rm -f "$partial.log"
echo "rootfs built: $dir ($(du -sh "$dir" | cut -f1))"
