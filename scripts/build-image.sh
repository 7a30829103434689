#!/usr/bin/env bash
# Builds the training image from container/ for linux/amd64 (SageMaker's platform, even
# on an ARM laptop) and tags it $IMAGE_NAME.
# Needs: IMAGE_NAME, BASE_IMAGE; optional BASE_IMAGE_FALLBACK (offline|none), OFFLINE_BASE_IMAGE.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

readonly PLATFORM=linux/amd64
CONTEXT="$(dirname "$0")/../container"
readonly CONTEXT

# The base image to build from: BASE_IMAGE when it is here or can be pulled, else the
# offline base (built from Debian packages) when the fallback allows it, else a clear stop.
resolve_base() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    printf '%s\n' "$BASE_IMAGE"
    return
  fi
  log "pulling BASE_IMAGE=$BASE_IMAGE"
  local pull_error
  if pull_error=$(docker pull --platform "$PLATFORM" "$BASE_IMAGE" 2>&1 >/dev/null); then
    printf '%s\n' "$BASE_IMAGE"
    return
  fi
  pull_error=$(printf '%s' "$pull_error" | tail -n 1)
  if [[ "${BASE_IMAGE_FALLBACK:-none}" == offline && -n "${OFFLINE_BASE_IMAGE:-}" ]]; then
    log "WARNING: BASE_IMAGE=$BASE_IMAGE cannot be pulled ($pull_error); building on the offline base $OFFLINE_BASE_IMAGE instead (set BASE_IMAGE_FALLBACK=none to stop here)"
    "$(dirname "$0")/build-offline-base.sh" "$OFFLINE_BASE_IMAGE" >&2
    printf '%s\n' "$OFFLINE_BASE_IMAGE"
    return
  fi
  die "BASE_IMAGE=$BASE_IMAGE cannot be pulled ($pull_error); on a machine without registry access run 'make base-image' and set BASE_IMAGE=${OFFLINE_BASE_IMAGE:-titanic-offline-base:bookworm} (or BASE_IMAGE_FALLBACK=offline)"
}

main() {
  require_var IMAGE_NAME BASE_IMAGE
  require_docker
  local base
  base=$(resolve_base)
  # The label names the base actually used (BASE_IMAGE or the offline fallback): the size
  # benchmark measures the libraries as the image's size over it.
  local args=(--platform "$PLATFORM" --build-arg "BASE_IMAGE=$base" --label "com.titanic-toolkit.base-image=$base" -t "$IMAGE_NAME")
  # Under buildx, docker build adds a provenance attestation that turns the manifest into
  # an index, which SageMaker has rejected. The legacy builder neither adds nor knows it.
  if [[ "${DOCKER_BUILDKIT:-1}" != 0 ]] && docker buildx version >/dev/null 2>&1; then
    args+=(--provenance=false)
  fi
  log "docker build ${args[*]} $CONTEXT"
  docker build "${args[@]}" "$CONTEXT" >&2 ||
    die "docker build failed (output above); if pip could not reach PyPI, check the network or proxy of the Docker engine"
  local arch
  arch=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$IMAGE_NAME")
  [[ "$arch" == "$PLATFORM" ]] || die "built $IMAGE_NAME for $arch, not $PLATFORM; SageMaker would fail with 'exec format error'. Enable buildx/QEMU emulation and rebuild"
  log "built $IMAGE_NAME ($arch) from $base"
}

main "$@"
