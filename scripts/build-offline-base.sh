#!/usr/bin/env bash
# Builds a Python base image from Debian packages (debootstrap -> docker import), for
# machines that cannot pull python:3.12-slim. Pass its name as BASE_IMAGE.
# Usage: build-offline-base.sh [IMAGE_NAME]   (default: $OFFLINE_BASE_IMAGE)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

main() {
  local image=${1:-${OFFLINE_BASE_IMAGE:-}}
  [[ -n "$image" ]] || die "no image name given; pass one or set OFFLINE_BASE_IMAGE in config.env"
  require_docker
  require_cmd flock
  # One build at a time on this machine (parallel test tiers, two checkouts): a second caller
  # waits here, then finds the image the first one built.
  exec 9>"${TMPDIR:-/tmp}/titanic-offline-base.lock"
  flock 9
  if docker image inspect "$image" >/dev/null 2>&1; then
    log "offline base $image already exists; reusing it"
    return 0
  fi
  require_cmd debootstrap tar
  [[ -r /etc/ssl/certs/ca-certificates.crt ]] || die "/etc/ssl/certs/ca-certificates.crt is missing; install ca-certificates on this host"

  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  log "debootstrap bookworm (minbase) into $work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" >"$work/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see below); check that Debian's package mirror is reachable: $(tail -n 3 "$work/debootstrap.log" | tr '\n' ' ')"
  local stage0="${image%%:*}-rootfs:stage0"
  tar -C "$work/rootfs" -c . | docker import - "$stage0" >/dev/null

  # The host's CA bundle goes in after apt (which rewrites it) so that pip inside
  # later builds trusts the same TLS roots as this host (a TLS-inspecting proxy).
  cp /etc/ssl/certs/ca-certificates.crt "$work/host-ca.crt"
  cat >"$work/Dockerfile" <<EOF
FROM $stage0
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python-is-python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED \
 && ln -sf /usr/bin/pip3 /usr/local/bin/pip
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
EOF
  log "installing python3 and pip into $image"
  docker build -q -t "$image" "$work" >/dev/null
  docker image rm "$stage0" >/dev/null
  docker run --rm --network none "$image" python -c 'import sys; print("offline base ready:", sys.version.split()[0])'
}

main "$@"
