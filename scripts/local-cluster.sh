#!/usr/bin/env bash
# A Coffer cluster on loopback, to try a cluster and its failures before Docker:
#
#   scripts/local-cluster.sh start N DIR    N nodes under DIR (certificates generated, one drive
#                                           per node unless DRIVES=k); prints each node's S3
#                                           endpoint on its own line; node PIDs go to DIR/pids
#   scripts/local-cluster.sh kill DIR I     SIGKILL node I (1-based)
#   scripts/local-cluster.sh restart DIR I  start node I again on its own data
#   scripts/local-cluster.sh stop DIR       stop every node (SIGTERM, then SIGKILL after 10 s)
#
# Node I listens on 127.0.0.1: S3 BASE_PORT+10*I, admin +1, QUIC +2 (BASE_PORT default 19000).
# Node 1 bootstraps the cluster; the others join through it. All nodes share one built-in KMS
# root key (DIR/nodeI/kms/local-root.key, 0600) and one set of credentials in DIR/secrets.env
# (COFFER_ROOT_USER, COFFER_ROOT_PASSWORD, COFFER_ADMIN_TOKEN; 0600): source it to use the
# cluster with the AWS CLI (AWS_ACCESS_KEY_ID=$COFFER_ROOT_USER ...). Logs: DIR/nodeI.log.
#
# The binary: $COFFER_BIN, else the release build under $CARGO_TARGET_DIR (default
# $HOME/.cache/coffer-target) or ./target, else `coffer` on PATH.
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

find_bin() {
  if [ -n "${COFFER_BIN:-}" ]; then
    echo "$COFFER_BIN"
    return
  fi
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for b in "${CARGO_TARGET_DIR:-$HOME/.cache/coffer-target}/release/coffer" "$root/target/release/coffer"; do
    if [ -x "$b" ]; then
      echo "$b"
      return
    fi
  done
  command -v coffer || {
    echo "no coffer binary: build it (cargo build --release -p coffer-node) or set COFFER_BIN" >&2
    exit 1
  }
}

BASE_PORT="${BASE_PORT:-19000}"
s3_port() { echo $((BASE_PORT + 10 * $1)); }
admin_port() { echo $((BASE_PORT + 10 * $1 + 1)); }
quic_port() { echo $((BASE_PORT + 10 * $1 + 2)); }

rand_b64() { head -c "$1" /dev/urandom | base64 | tr -d '\n'; }
rand_alnum() { head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "$1"; }

# HTTP GET with the admin token; prints the body, fails on a non-2xx status.
admin_get() {
  local port=$1 path=$2
  python3 - "$port" "$path" <<'EOF'
import os, sys, urllib.request
port, path = sys.argv[1], sys.argv[2]
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                             headers={"Authorization": "Bearer " + os.environ["COFFER_ADMIN_TOKEN"]})
try:
    print(urllib.request.urlopen(req, timeout=3).read().decode())
except Exception as e:
    sys.exit(1)
EOF
}

# Writes DIR/nodeI.cmd: the node's command line, one argument per line (for restart).
write_cmd() {
  local dir=$1 i=$2 n=$3
  local bin
  bin="$(find_bin)"
  local node="$dir/node$i"
  local drives=""
  local k=${DRIVES:-1}
  for d in $(seq 1 "$k"); do
    drives="${drives:+$drives,}$node/drive$d"
  done
  {
    echo "$bin"
    echo server
    echo --data; echo "$node"
    echo --drives; echo "$drives"
    echo --s3-addr; echo "127.0.0.1:$(s3_port "$i")"
    echo --admin-addr; echo "127.0.0.1:$(admin_port "$i")"
    echo --cluster-listen; echo "127.0.0.1:$(quic_port "$i")"
    echo --cluster-cert; echo "$dir/certs/node$i.pem"
    echo --cluster-key; echo "$dir/certs/node$i.key"
    echo --cluster-ca; echo "$dir/certs/ca.pem"
    if [ "$i" -eq 1 ]; then
      echo --bootstrap
    else
      # Every other node: joining works while any member is up.
      local peers=""
      for j in $(seq 1 "$n"); do
        [ "$j" -eq "$i" ] && continue
        peers="${peers:+$peers,}$j@127.0.0.1:$(quic_port "$j")"
      done
      echo --peers; echo "$peers"
    fi
    if [ -n "${PARITY:-}" ]; then
      echo --cluster-parity; echo "$PARITY"
    fi
  } >"$dir/node$i.cmd"
}

# Starts node I in the background; records its PID on line I of DIR/pids.
launch() {
  local dir=$1 i=$2
  local -a cmd
  mapfile -t cmd <"$dir/node$i.cmd"
  (
    set -a
    # shellcheck disable=SC1091
    . "$dir/secrets.env"
    set +a
    exec "${cmd[@]}" </dev/null >>"$dir/node$i.log" 2>&1
  ) &
  local pid=$!
  set_pid "$dir" "$i" "$pid"
}

set_pid() {
  local dir=$1 i=$2 pid=$3
  local n
  n=$(cat "$dir/size")
  touch "$dir/pids"
  python3 - "$dir/pids" "$i" "$pid" "$n" <<'EOF'
import sys
path, i, pid, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
lines = open(path).read().split("\n")[:n]
lines += [""] * (n - len(lines))
lines[i - 1] = pid
open(path, "w").write("\n".join(lines) + "\n")
EOF
}

pid_of() { sed -n "${2}p" "$1/pids"; }

# Waits until node I answers health (bounded).
wait_healthy() {
  local dir=$1 i=$2 secs=${3:-60}
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$(admin_port "$i")/api/v1/health', timeout=2)" 2>/dev/null; then
      return 0
    fi
    local pid
    pid=$(pid_of "$dir" "$i")
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "node $i exited; last log lines:" >&2
      tail -n 20 "$dir/node$i.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "node $i not healthy within ${secs}s; last log lines:" >&2
  tail -n 20 "$dir/node$i.log" >&2
  return 1
}

# Waits until node 1's layout holds N nodes and all of them are voters.
wait_formed() {
  local dir=$1 n=$2 secs=${3:-90}
  local end=$((SECONDS + secs))
  set -a
  # shellcheck disable=SC1091
  . "$dir/secrets.env"
  set +a
  while [ $SECONDS -lt $end ]; do
    local ok=1
    for i in $(seq 1 "$n"); do
      local body
      body=$(admin_get "$(admin_port "$i")" /api/v1/cluster 2>/dev/null) || { ok=0; break; }
      if ! python3 -c '
import json, sys
s = json.loads(sys.argv[1]); n = int(sys.argv[2])
voters = [x for x in s["nodes"] if x["role"] in ("leader", "voter")]
sys.exit(0 if s["layout_nodes"] == n and len(voters) == n and s["leader"] else 1)' "$body" "$n"; then
        ok=0
        break
      fi
    done
    if [ $ok -eq 1 ]; then
      return 0
    fi
    sleep 0.3
  done
  echo "cluster of $n nodes not formed within ${secs}s" >&2
  return 1
}

cmd_start() {
  [ $# -eq 2 ] || usage
  local n=$1 dir=$2
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || usage
  if [ -e "$dir/pids" ]; then
    echo "$dir already holds a cluster: stop it, or use restart" >&2
    exit 1
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  echo "$n" >"$dir/size"
  local bin
  bin="$(find_bin)"
  "$bin" certs ca --out "$dir/certs" >/dev/null
  (
    umask 077
    {
      echo "COFFER_ROOT_USER=coffer$(rand_alnum 8)"
      echo "COFFER_ROOT_PASSWORD=$(rand_alnum 32)"
      echo "COFFER_ADMIN_TOKEN=$(rand_alnum 40)"
    } >"$dir/secrets.env"
  )
  local root_key
  root_key="$(rand_b64 32)"
  for i in $(seq 1 "$n"); do
    "$bin" certs node --ca "$dir/certs" --name "node$i" --node-id "$i" \
      --ip 127.0.0.1 --dns localhost --out "$dir/certs" >/dev/null
    mkdir -p "$dir/node$i/kms"
    (umask 077 && printf '%s' "$root_key" >"$dir/node$i/kms/local-root.key")
    write_cmd "$dir" "$i" "$n"
  done
  launch "$dir" 1
  wait_healthy "$dir" 1
  for i in $(seq 2 "$n"); do
    launch "$dir" "$i"
  done
  for i in $(seq 2 "$n"); do
    wait_healthy "$dir" "$i" 90
  done
  wait_formed "$dir" "$n"
  for i in $(seq 1 "$n"); do
    echo "http://127.0.0.1:$(s3_port "$i")"
  done
}

cmd_kill() {
  [ $# -eq 2 ] || usage
  local dir=$1 i=$2 pid
  pid=$(pid_of "$dir" "$i")
  [ -n "$pid" ] || { echo "no node $i in $dir" >&2; exit 1; }
  kill -9 "$pid" 2>/dev/null || true
  # Reap or wait until it is gone, so a restart can take its ports.
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

cmd_restart() {
  [ $# -eq 2 ] || usage
  local dir=$1 i=$2 pid
  dir="$(cd "$dir" && pwd)"
  pid=$(pid_of "$dir" "$i")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "node $i is running (pid $pid)" >&2
    exit 1
  fi
  launch "$dir" "$i"
  wait_healthy "$dir" "$i" 90
  echo "http://127.0.0.1:$(s3_port "$i")"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local dir=$1
  [ -f "$dir/pids" ] || return 0
  local pids
  pids=$(grep -E '^[0-9]+$' "$dir/pids" || true)
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
  rm -f "$dir/pids"
}

[ $# -ge 1 ] || usage
sub=$1
shift
case "$sub" in
  start) cmd_start "$@" ;;
  kill) cmd_kill "$@" ;;
  restart) cmd_restart "$@" ;;
  stop) cmd_stop "$@" ;;
  *) usage ;;
esac
