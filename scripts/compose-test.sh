#!/usr/bin/env bash
# The Docker Compose test: the four-node cluster of docker-compose.yml in real containers.
#
#   scripts/compose-test.sh          (run by scripts/test.sh whenever `docker info` succeeds)
#
# Builds the image without a registry (scripts/docker-image.sh; $COFFER_BIN if set), brings the
# cluster up under a project name, secrets folder and 127.0.0.1 ports of its own (a cluster the
# user runs from this checkout is not touched), runs tests/compose/scenario.py (boto3 on every
# node, kill + heal, network cut + catch-up, image and volume scans) and always ends with
# `compose down -v` and the secrets folder removed, on failure too. Container logs go to
# $CARGO_TARGET_DIR/test-logs/compose.log.
#   PYTHON   interpreter with boto3 (default: .venv/bin/python)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if docker compose version >/dev/null 2>&1; then
  COMPOSE="docker compose"
else
  COMPOSE="docker-compose"
fi
export COMPOSE
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
LOG_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffer-target}/test-logs"
mkdir -p "$LOG_DIR"

export COMPOSE_PROJECT_NAME="coffertest$$"
export COFFER_IMAGE="coffer:compose-test"
export COFFER_SECRETS_DIR
COFFER_SECRETS_DIR="$(mktemp -d "${TMPDIR:-/tmp}/coffer-compose-secrets.XXXXXX")"
# Free loopback ports, eight of them.
read -r -a PORTS <<<"$("$PYTHON" - <<'PY'
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
)"
for i in 1 2 3 4; do
  export "COFFER_NODE${i}_S3_PORT=${PORTS[$((2 * i - 2))]}"
  export "COFFER_NODE${i}_ADMIN_PORT=${PORTS[$((2 * i - 1))]}"
done

cleanup() {
  local rc=$?
  $COMPOSE logs --no-color --timestamps >"$LOG_DIR/compose.log" 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    echo "---- last container log lines (all of them in $LOG_DIR/compose.log)"
    tail -n 60 "$LOG_DIR/compose.log" || true
  fi
  $COMPOSE --profile vault down -v --remove-orphans >/dev/null 2>&1 \
    || $COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$COFFER_SECRETS_DIR"
  exit "$rc"
}
trap cleanup EXIT

t0=$SECONDS
COFFER_IMAGE="$COFFER_IMAGE" bash scripts/docker-image.sh
echo "---- images built in $((SECONDS - t0))s"
if docker image inspect coffer-openbao:local >/dev/null 2>&1; then
  export COFFER_OPENBAO_IMAGE=coffer-openbao:local
fi
"$PYTHON" tests/compose/scenario.py
