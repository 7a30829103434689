#!/usr/bin/env bash
# Run the test tiers side by side: the tests that need no Docker engine (CPU-bound) and the
# Docker and embedded-stack tests (mostly waiting on containers), each its own pytest process
# in random order. On two CPUs the wall time is the Docker tier's instead of the sum of both.
# Each tier's output is kept whole and printed after both end, the fast tier's first; the exit
# status is non-zero when either tier fails.
# Usage: test-tiers.sh PYTHON [pytest arguments for both tiers...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

# Where the tiers' output is kept until both end (global: the EXIT trap removes it).
LOGS=""

# run_tier NAME MARKERS LOG PYTHON ARGS...: one pytest process over the tests MARKERS selects.
run_tier() {
  local name="$1" markers="$2" out="$3" python="$4"
  shift 4
  log "the ${name} tier started"
  "$python" -m pytest -p no:cacheprovider -p random_order --random-order -m "$markers" "$@" >"$out" 2>&1
}

main() {
  [[ $# -ge 1 ]] || die "usage: test-tiers.sh PYTHON [pytest arguments]; make test calls it"
  local python="$1" fast_status=0 docker_status=0 fast_pid docker_pid
  shift
  LOGS=$(mktemp -d)
  trap 'rm -rf "$LOGS"' EXIT
  run_tier fast "not docker and not stack" "$LOGS/fast.log" "$python" "$@" &
  fast_pid=$!
  run_tier docker "docker or stack" "$LOGS/docker.log" "$python" "$@" &
  docker_pid=$!
  wait "$fast_pid" || fast_status=$?
  wait "$docker_pid" || docker_status=$?
  printf '\n==== tests that need no Docker engine (exit %s)\n' "$fast_status"
  cat "$LOGS/fast.log"
  printf '\n==== Docker and embedded-stack tests (exit %s)\n' "$docker_status"
  cat "$LOGS/docker.log"
  if ((fast_status != 0 || docker_status != 0)); then
    die "a tier failed (above); rerun one with: $python -m pytest -m 'MARKERS' -k NAME"
  fi
}

main "$@"
