#!/usr/bin/env bash
# Run the test tiers side by side, each its own pytest process in random order: the tests that
# need no Docker engine (CPU-bound), the make-all tier (tests/test_make_all.py: clean copies
# driving the real Makefile against their own embedded stacks) and the other Docker tests
# (the image, serving, multi-host training, the IAM-enforced run). The Docker tiers mostly
# wait on containers, so on two CPUs the wall time is the longest tier's, not the sum.
# Each tier's output is kept whole and printed after all end; the exit status is non-zero
# when any tier fails.
# Usage: test-tiers.sh PYTHON [pytest arguments for every tier...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

# Where the tiers' output is kept until all end (global: the EXIT trap removes it).
LOGS=""
readonly MAKE_ALL_TESTS=tests/test_make_all.py

# run_tier NAME LOG PYTHON ARGS...: one pytest process; ARGS select its tests.
run_tier() {
  local name="$1" out="$2" python="$3"
  shift 3
  log "the ${name} tier started"
  "$python" -m pytest -p no:cacheprovider -p random_order --random-order "$@" >"$out" 2>&1
}

main() {
  [[ $# -ge 1 ]] || die "usage: test-tiers.sh PYTHON [pytest arguments]; make test calls it"
  local python="$1" failed=0 tier
  shift
  LOGS=$(mktemp -d)
  trap 'rm -rf "$LOGS"' EXIT
  local -A pids=()
  run_tier fast "$LOGS/fast.log" "$python" -m "not docker and not stack" "$@" &
  pids[fast]=$!
  run_tier make-all "$LOGS/make-all.log" "$python" -m "docker or stack" "$MAKE_ALL_TESTS" "$@" &
  pids[make-all]=$!
  run_tier docker "$LOGS/docker.log" "$python" -m "docker or stack" --ignore="$MAKE_ALL_TESTS" "$@" &
  pids[docker]=$!
  for tier in fast make-all docker; do
    local status=0
    wait "${pids[$tier]}" || status=$?
    printf '\n==== the %s tier (exit %s)\n' "$tier" "$status"
    cat "$LOGS/$tier.log"
    ((status == 0)) || failed=1
  done
  if ((failed)); then
    die "a tier failed (above); rerun one with: $python -m pytest -m 'MARKERS' -k NAME"
  fi
}

main "$@"
