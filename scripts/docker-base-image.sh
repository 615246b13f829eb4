#!/usr/bin/env bash
# Builds a minimal Debian base image from Debian's own packages, for machines whose Docker can
# pull nothing from a registry:
#
#   scripts/docker-base-image.sh [TAG]        (default TAG: coffer-base:bookworm)
#
# debootstrap (minbase variant, plus ca-certificates for TLS to a KMS) into a scratch folder,
# trimmed, then `docker import`. Does nothing when the image already exists (FORCE=1 rebuilds).
# Needs root (debootstrap) and the debootstrap package, which it installs with apt-get when
# missing. The suite follows the host's Debian release, so a binary built on the host runs in it.
#   MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   SUITE    Debian suite (default: the host's VERSION_CODENAME, else bookworm)
set -euo pipefail

TAG="${1:-coffer-base:bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
if [ -z "${SUITE:-}" ]; then
  SUITE=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  SUITE="${SUITE:-bookworm}"
fi

if [ -z "${FORCE:-}" ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "base image $TAG exists"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffer-rootfs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"

echo "debootstrap $SUITE from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$MIRROR" \
  >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }

# Nothing a running container needs: package caches, docs, man pages, locales.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old

tar --numeric-owner -C "$ROOTFS" -c . \
  | docker import --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE" - "$TAG" >/dev/null
echo "built base image $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
