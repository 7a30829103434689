#!/usr/bin/env bash
# Brings this machine up for the toolkit: the Debian packages it uses, and a running Docker
# engine. Silent when everything is there already; installs nothing with MACHINE_SETUP=off.
# Usage: setup-machine.sh stack|docker
#   stack   the embedded stack (make all with TARGET=local, make test): every package below
#   docker  only a Docker engine (make build/push with TARGET=aws)
# As root it installs and starts what is missing; as a user with passwordless sudo, through
# `sudo -n`; otherwise it stops before doing anything, with the one command to run.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

# Debian's names for what the embedded stack runs (the engine, local mode's compose, the
# offline base's debootstrap, the OCI registry), what the scripts call, and what Debian's
# python3 needs to make the toolkit's virtual environment.
readonly STACK_PACKAGES=(docker.io docker-compose debootstrap docker-registry make curl openssl procps python3-venv)
readonly DOCKER_PACKAGES=(docker.io)
readonly DOCKERD_LOG=${DOCKERD_LOG:-/var/log/titanic-toolkit-dockerd.log}
readonly DOCKERD_WAIT=${DOCKERD_WAIT:-60}

# The command each package brings, for a machine without dpkg to ask.
command_of() {
  case "$1" in
    docker.io) echo dockerd ;;
    procps) echo ps ;;
    python3-venv) echo python3 ;;
    *) echo "$1" ;;
  esac
}

# missing_packages NAME...: prints those of NAME... that are not installed (dpkg's word, or
# on a machine without dpkg, whether the package's command is on PATH).
missing_packages() {
  local pkg
  for pkg in "$@"; do
    if command -v dpkg-query >/dev/null 2>&1; then
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || printf '%s\n' "$pkg"
    else
      command -v "$(command_of "$pkg")" >/dev/null 2>&1 || printf '%s\n' "$pkg"
    fi
  done
}

# as_root CMD...: runs CMD as root (directly when root, else through passwordless sudo);
# returns 1 without running anything when neither is possible.
as_root() {
  if [[ "$(id -u)" == 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo -n "$@"
  else
    return 1
  fi
}

# can_be_root: true when as_root would run a command.
can_be_root() { [[ "$(id -u)" == 0 ]] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }

# install_packages NAME...: installs what is missing of NAME..., naming each first; stops with
# the command to run when it may not (MACHINE_SETUP=off, no root, no apt-get).
install_packages() {
  local missing
  mapfile -t missing < <(missing_packages "$@")
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null 2>&1 ||
    die "this is not a Debian or Ubuntu machine (no apt-get); install these (Debian's names) with your system's packages and rerun: ${missing[*]}"
  local command="sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
  [[ "$MACHINE_SETUP" == off ]] &&
    die "missing Debian packages: ${missing[*]} (MACHINE_SETUP=off installs nothing); run: $command"
  can_be_root || die "missing Debian packages: ${missing[*]}; as a user without passwordless sudo, run: $command"
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# start_docker_engine: starts dockerd when no engine answers and waits DOCKERD_WAIT seconds
# for it, saying where its log is; on a timeout, the log's last lines and exit 1.
start_docker_engine() {
  docker_engine_up && return 0
  local err
  err=$(docker info 2>&1 >/dev/null || true)
  if grep -qi "permission denied" <<<"$err"; then
    die "the Docker engine runs but refuses you (permission denied on its socket); run: sudo usermod -aG docker \"\$USER\", then log in again"
  fi
  [[ "$MACHINE_SETUP" == off ]] &&
    die "no Docker engine answers (MACHINE_SETUP=off starts nothing); start it: sudo systemctl start docker (or sudo dockerd &)"
  can_be_root || die "no Docker engine answers; start it: sudo systemctl start docker (or sudo dockerd &)"
  log "no Docker engine answers; starting dockerd (its log: $DOCKERD_LOG)"
  # shellcheck disable=SC2016  # $1 is the inner shell's: the log's path, passed as data
  as_root sh -c 'nohup dockerd >"$1" 2>&1 &' sh "$DOCKERD_LOG"
  local waited=0
  until docker_engine_up; do
    if ((waited >= DOCKERD_WAIT * 5)); then
      as_root tail -n 20 "$DOCKERD_LOG" >&2 || true
      die "dockerd did not answer within ${DOCKERD_WAIT}s; its log's last lines are above ($DOCKERD_LOG)"
    fi
    sleep 0.2
    waited=$((waited + 1))
  done
  log "the Docker engine is up"
}

main() {
  local need=${1:-stack}
  MACHINE_SETUP=${MACHINE_SETUP:-auto}
  [[ "$MACHINE_SETUP" =~ ^(auto|off)$ ]] || die "MACHINE_SETUP is '$MACHINE_SETUP'; use auto (install what is missing) or off"
  case "$need" in
    stack) install_packages "${STACK_PACKAGES[@]}" ;;
    docker) install_packages "${DOCKER_PACKAGES[@]}" ;;
    *) die "usage: setup-machine.sh stack|docker (got '$need')" ;;
  esac
  start_docker_engine
}

main "$@"
