# shellcheck shell=bash
# Shared helpers for every script in scripts/: logging, dying with a reason, and
# checking that tools and variables are there before anything is changed.
# Source it; do not run it.

# What the toolkit tags its own resources with (launcher/lib/config.py TOOLKIT_TAG; the two are
# proven equal by tests/test_scripts_lib.py).
# shellcheck disable=SC2034  # used by the scripts that source this file
readonly TOOLKIT_TAG_KEY=created-by TOOLKIT_TAG_VALUE=titanic-sagemaker-toolkit

# One prefix per script, so interleaved `make` output says who spoke.
_LIB_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

# log MESSAGE...: one line on stderr, prefixed with the calling script's name.
log() { printf '[%s] %s\n' "$_LIB_NAME" "$*" >&2; }

# die MESSAGE: one line that names the problem and the fix, then exit 1.
die() {
  printf '[%s] ERROR: %s\n' "$_LIB_NAME" "$*" >&2
  exit 1
}

# require_cmd NAME...: dies naming the first command that is not on PATH.
require_cmd() {
  local cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' is not installed or not on PATH; install it (see README 'Troubleshooting') and rerun"
  done
}

# require_var NAME...: dies naming the first variable that is empty or unset.
require_var() {
  local var
  for var in "$@"; do
    [[ -n "${!var:-}" ]] || die "$var is empty; set it in config.env or as 'make $var=...'"
  done
}

# docker_engine_up: true when a Docker engine answers (not just a client on PATH).
docker_engine_up() { docker info >/dev/null 2>&1; }

# require_docker: dies unless a docker client is on PATH and an engine answers it.
require_docker() {
  require_cmd docker
  docker_engine_up || die "no Docker engine answers on ${DOCKER_HOST:-/var/run/docker.sock}; start it (e.g. 'sudo dockerd &' or 'sudo systemctl start docker') and rerun"
}

# endpoint_hint: prints what to check when an AWS endpoint does not answer (reads
# AWS_ENDPOINT_URL): the embedded stack, or the network. launcher/lib/errors.py says the same.
endpoint_hint() {
  if [[ -n "${AWS_ENDPOINT_URL:-}" ]]; then
    printf "is the embedded AWS at %s up? run 'make local-status' / 'make local-up'" "$AWS_ENDPOINT_URL"
  else
    printf 'check the network, any proxy, and AWS_REGION'
  fi
}

# GetBucketLocation, not HeadBucket: HeadBucket needs s3:ListBucket without a prefix, which
# the runner policy grants only for the toolkit's prefixes (iam/runner-policy.json).
# bucket_state: prints exists, missing or forbidden for $BUCKET; dies when S3 does not answer.
bucket_state() {
  local err
  if err=$(aws s3api get-bucket-location --bucket "$BUCKET" 2>&1 >/dev/null); then
    echo exists
  elif grep -qE 'NoSuchBucket|404|Not Found' <<<"$err"; then
    echo missing
  elif grep -qE 'AccessDenied|403|Forbidden' <<<"$err"; then
    echo forbidden
  else
    die "cannot reach S3 for bucket $BUCKET ($(tail -n 1 <<<"$err")); $(endpoint_hint)"
  fi
}
