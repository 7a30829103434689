#!/usr/bin/env bash
# The embedded AWS for TARGET=local: moto in server mode (S3, ECR, IAM, STS, SageMaker APIs)
# and a real OCI registry standing in for ECR's registry, both on 127.0.0.1, each with a
# pid file and a log under $LOCAL_STATE_DIR. Also the two Docker networks local mode's
# containers join (launcher/lib/local_compose.py puts them there): sagemaker-local, internal, so
# training containers have no route off this host; and $LOCAL_SERVING_NETWORK for serving
# containers, whose published ports bind to 127.0.0.1 only and which has no NAT.
# The stack id ($LOCAL_STATE_DIR/stack-id) names the servers by pid *and* start time, so a
# recycled pid or a server restarted behind the toolkit's back is never taken for the stack
# that upload and push filled; it is removed before anything starts and written last.
# Usage: local-stack.sh up|down|status, or check DIR (read-only; prints the two ports if the
# stack recorded in DIR is the one running)
# Needs: LOCAL_MOTO_PORT, LOCAL_REGISTRY_PORT, LOCAL_STATE_DIR, MOTO_SERVER (path to moto_server)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

readonly SM_NETWORK=sagemaker-local
readonly REGISTRY_IMAGE=registry:2
# How long a running server may take to answer before it is taken for hung.
readonly PATIENCE_SECONDS=30

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# pid_runs PIDFILE WORD: the pid is alive (not a zombie) and its command line names WORD (not
# a recycled pid).
pid_runs() { pid_alive "$1" && [[ -n "$(started_at "$(cat "$1")")" ]] && ps -o args= -p "$(cat "$1")" 2>/dev/null | grep -q -- "$2"; }

# When a live process started (nothing for a dead or zombie one): a recycled pid has another
# start time. On Linux, the kernel's count of clock ticks since boot, which a clock step (NTP,
# a laptop waking up) leaves alone; elsewhere the wall-clock start ps prints.
started_at() {
  local state stat fields
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ "$state" == Z* ]] && return 0
  if stat=$(cat "/proc/$1/stat" 2>/dev/null); then
    # The fields after the command name, which may itself hold spaces and ')'.
    read -r -a fields <<<"${stat##*) }"
    printf 'ticks %s\n' "${fields[19]}"
    return 0
  fi
  ps -o lstart= -p "$1" 2>/dev/null | tr -s ' ' | sed 's/^ //'
}

# stack_field FILE KEY: one KEY=value line of a stack-id file.
stack_field() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# answers_within SECONDS CMD...: CMD succeeds before SECONDS have passed (tried 4 times a second).
answers_within() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local seconds=$1 what=$2
  shift 2
  answers_within "$seconds" "$@" || die "$what did not come up within ${seconds}s; see its log in $LOCAL_STATE_DIR"
}

# moto's config page costs the same whatever moto holds (data.json serialises every model it
# ever made: past 5 s on a busy 2-CPU machine).
moto_answers_on() { curl -fs --max-time 5 --cacert "$TLS_DIR/cert.pem" -o /dev/null "https://127.0.0.1:$1/moto-api/config"; }
registry_answers_on() { curl -fs --max-time 5 -o /dev/null "http://127.0.0.1:$1/v2/"; }
moto_answers() { moto_answers_on "$LOCAL_MOTO_PORT"; }
registry_answers() { registry_answers_on "$LOCAL_REGISTRY_PORT"; }

# The servers recorded in $LOCAL_STATE_DIR/stack-id are alive: each pid with its recorded
# start time.
recorded_servers_alive() {
  local id_file="$LOCAL_STATE_DIR/stack-id" server pid
  [[ -s "$id_file" ]] || return 1
  for server in moto registry; do
    pid=$(stack_field "$id_file" "${server}_pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(started_at "$pid")" == "$(stack_field "$id_file" "${server}_started")" ]] || return 1
  done
}

# The recorded servers answer on their recorded ports. A live one is waited for: a busy moto
# is still the stack upload and push filled, and taking it for a new one would redo both.
recorded_servers_answer() {
  local id_file="$LOCAL_STATE_DIR/stack-id"
  answers_within "$PATIENCE_SECONDS" moto_answers_on "$(stack_field "$id_file" moto_port)" &&
    answers_within "$PATIENCE_SECONDS" registry_answers_on "$(stack_field "$id_file" registry_port)"
}

# The stack recorded in $LOCAL_STATE_DIR/stack-id is the one running, and answers.
recorded_stack_running() { recorded_servers_alive && recorded_servers_answer; }

write_stack_id() {
  local id_file="$LOCAL_STATE_DIR/stack-id" moto_pid registry_pid partial
  moto_pid=$(cat "$LOCAL_STATE_DIR/moto.pid")
  registry_pid=$(cat "$LOCAL_STATE_DIR/registry.pid")
  partial=$(mktemp "$LOCAL_STATE_DIR/.stack-id.XXXXXX")
  {
    printf 'id=%s\n' "$(date -u +%Y%m%dT%H%M%S.%N)"
    printf 'moto_pid=%s\nmoto_started=%s\nmoto_port=%s\n' "$moto_pid" "$(started_at "$moto_pid")" "$LOCAL_MOTO_PORT"
    printf 'registry_pid=%s\nregistry_started=%s\nregistry_port=%s\n' "$registry_pid" "$(started_at "$registry_pid")" "$LOCAL_REGISTRY_PORT"
  } >"$partial"
  mv "$partial" "$id_file"
}

# A port held by something that is not ours: say so instead of talking to a stranger.
refuse_foreign_port() { # refuse_foreign_port PORT VAR PIDFILE
  if ! pid_alive "$3" && port_open "$1"; then
    die "port $1 on 127.0.0.1 is in use by another process; set $2 to a free port (config.env) and rerun"
  fi
}

# moto serves HTTPS with a certificate made here, trusted through AWS_CA_BUNDLE: the bucket
# policy that denies plain HTTP (aws:SecureTransport) then holds for the embedded S3 as on AWS.
ensure_certificate() {
  [[ -s "$TLS_DIR/cert.pem" && -s "$TLS_DIR/key.pem" ]] && return 0
  require_cmd openssl
  mkdir -p "$TLS_DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate for the embedded AWS in $TLS_DIR"
}

start_moto() {
  local pidfile="$LOCAL_STATE_DIR/moto.pid"
  if pid_runs "$pidfile" moto_server && moto_answers; then
    return 0
  fi
  refuse_foreign_port "$LOCAL_MOTO_PORT" LOCAL_MOTO_PORT "$pidfile"
  [[ -x "$MOTO_SERVER" ]] || die "moto_server not found at $MOTO_SERVER; run 'make setup'"
  log "starting moto on 127.0.0.1:$LOCAL_MOTO_PORT"
  # Recording lets tests compare the calls the pipeline makes with its IAM policy.
  ensure_certificate
  MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH="$LOCAL_STATE_DIR/moto-recording.jsonl" nohup "$MOTO_SERVER" -H 127.0.0.1 -p "$LOCAL_MOTO_PORT" \
    -c "$TLS_DIR/cert.pem" -k "$TLS_DIR/key.pem" >"$LOCAL_STATE_DIR/moto.log" 2>&1 &
  echo $! >"$pidfile"
  wait_for 30 "moto (127.0.0.1:$LOCAL_MOTO_PORT)" moto_answers
}

# Debian's docker-registry, bound to loopback only.
start_registry_binary() {
  cat >"$LOCAL_STATE_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $LOCAL_STATE_DIR/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$LOCAL_REGISTRY_PORT
EOF
  log "starting the registry on 127.0.0.1:$LOCAL_REGISTRY_PORT"
  nohup docker-registry serve "$LOCAL_STATE_DIR/registry.yml" >"$LOCAL_STATE_DIR/registry.log" 2>&1 &
  echo $! >"$1"
}

# The registry image, published on loopback only; its pid file holds the container's main
# process, so liveness checks work alike. (Not exercised where no image can be pulled.)
start_registry_container() {
  local name="titanic-registry-$LOCAL_REGISTRY_PORT"
  log "starting the registry container $name on 127.0.0.1:$LOCAL_REGISTRY_PORT"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" -p "127.0.0.1:$LOCAL_REGISTRY_PORT:5000" \
    -v "$LOCAL_STATE_DIR/registry-data:/var/lib/registry" "$REGISTRY_IMAGE" >"$LOCAL_STATE_DIR/registry.log"
  echo "$name" >"$LOCAL_STATE_DIR/registry.container"
  docker inspect --format '{{.State.Pid}}' "$name" >"$1"
}

start_registry() {
  local pidfile="$LOCAL_STATE_DIR/registry.pid"
  if { pid_runs "$pidfile" docker-registry || pid_runs "$pidfile" registry; } && registry_answers; then
    return 0
  fi
  refuse_foreign_port "$LOCAL_REGISTRY_PORT" LOCAL_REGISTRY_PORT "$pidfile"
  mkdir -p "$LOCAL_STATE_DIR/registry-data"
  if command -v docker-registry >/dev/null 2>&1; then
    start_registry_binary "$pidfile"
  elif docker image inspect "$REGISTRY_IMAGE" >/dev/null 2>&1 || docker pull "$REGISTRY_IMAGE" >/dev/null 2>&1; then
    start_registry_container "$pidfile"
  else
    die "no OCI registry to run: install Debian's docker-registry (sudo apt-get install docker-registry), or make the image $REGISTRY_IMAGE pullable, and rerun"
  fi
  wait_for 30 "the registry (127.0.0.1:$LOCAL_REGISTRY_PORT)" registry_answers
}

ensure_serving_network() {
  local binding
  if binding=$(docker network inspect --format '{{index .Options "com.docker.network.bridge.host_binding_ipv4"}}/{{index .Options "com.docker.network.bridge.enable_ip_masquerade"}}' "$LOCAL_SERVING_NETWORK" 2>/dev/null); then
    [[ "$binding" == 127.0.0.1/false ]] && return 0
    log "recreating Docker network $LOCAL_SERVING_NETWORK: ports on 127.0.0.1 only, no NAT"
    docker network rm "$LOCAL_SERVING_NETWORK" >/dev/null ||
      die "Docker network $LOCAL_SERVING_NETWORK exists with other settings and is in use; stop its containers (docker network inspect $LOCAL_SERVING_NETWORK) and rerun"
  fi
  docker network create --label "$TOOLKIT_TAG_KEY=$TOOLKIT_TAG_VALUE" \
    -o com.docker.network.bridge.host_binding_ipv4=127.0.0.1 \
    -o com.docker.network.bridge.enable_ip_masquerade=false "$LOCAL_SERVING_NETWORK" >/dev/null
}

ensure_networks() {
  ensure_internal_network
  ensure_serving_network
}

ensure_internal_network() {
  local internal
  if internal=$(docker network inspect --format '{{.Internal}}' "$SM_NETWORK" 2>/dev/null); then
    [[ "$internal" == true ]] && return 0
    log "recreating Docker network $SM_NETWORK as internal (no route off this host)"
    docker network rm "$SM_NETWORK" >/dev/null ||
      die "Docker network $SM_NETWORK exists without --internal and is in use; stop its containers (docker network inspect $SM_NETWORK) and rerun"
  fi
  docker network create --internal "$SM_NETWORK" >/dev/null
}

require_compose() {
  if docker compose version 2>/dev/null | grep -q 'v2'; then return 0; fi
  command -v docker-compose >/dev/null 2>&1 ||
    die "SageMaker local mode needs 'docker compose' (v2) or 'docker-compose'; install one (sudo apt-get install docker-compose) and rerun"
}

stop_one() { # stop_one NAME PIDFILE EXPECTED_COMMAND_WORD
  local pidfile=$2 pid
  pid_alive "$pidfile" || {
    rm -f "$pidfile"
    return 0
  }
  pid=$(cat "$pidfile")
  # Only the process we started: a recycled pid now running something else is left alone.
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$3"; then
    log "stopping $1 (pid $pid)"
    kill "$pid"
    local i
    for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

cmd_up() {
  require_cmd curl
  require_docker
  require_compose
  mkdir -p "$LOCAL_STATE_DIR"
  if recorded_servers_alive && [[ "$(stack_field "$LOCAL_STATE_DIR/stack-id" moto_port)" == "$LOCAL_MOTO_PORT" &&
    "$(stack_field "$LOCAL_STATE_DIR/stack-id" registry_port)" == "$LOCAL_REGISTRY_PORT" ]]; then
    recorded_servers_answer ||
      die "the embedded AWS is running but moto or the registry has not answered for ${PATIENCE_SECONDS}s; see moto.log and registry.log in $LOCAL_STATE_DIR, then run 'make local-down' and rerun (upload and push redo)"
    ensure_networks
    return 0
  fi
  # Whatever happens next, the old id no longer describes what runs: an interrupted start
  # must leave no id behind, so the next run starts again and redoes upload and push.
  rm -f "$LOCAL_STATE_DIR/stack-id"
  start_moto
  start_registry
  ensure_networks
  write_stack_id
  log "embedded AWS at https://127.0.0.1:$LOCAL_MOTO_PORT, registry at 127.0.0.1:$LOCAL_REGISTRY_PORT (new stack id: upload and push redo)"
}

cmd_down() {
  stop_one moto "$LOCAL_STATE_DIR/moto.pid" moto_server
  if [[ -f "$LOCAL_STATE_DIR/registry.container" ]]; then
    log "removing the registry container"
    docker rm -f "$(cat "$LOCAL_STATE_DIR/registry.container")" >/dev/null 2>&1 || true
    rm -f "$LOCAL_STATE_DIR/registry.container" "$LOCAL_STATE_DIR/registry.pid"
  fi
  stop_one registry "$LOCAL_STATE_DIR/registry.pid" docker-registry
  # Both forget together: moto's repositories and the registry's layers.
  rm -rf "$LOCAL_STATE_DIR/registry-data" "$LOCAL_STATE_DIR/stack-id"
}

cmd_status() {
  local up=0
  if pid_alive "$LOCAL_STATE_DIR/moto.pid" && moto_answers; then
    echo "moto:     up   https://127.0.0.1:$LOCAL_MOTO_PORT (pid $(cat "$LOCAL_STATE_DIR/moto.pid"))"
  else
    echo "moto:     down"
    up=1
  fi
  if pid_alive "$LOCAL_STATE_DIR/registry.pid" && registry_answers; then
    echo "registry: up   127.0.0.1:$LOCAL_REGISTRY_PORT (pid $(cat "$LOCAL_STATE_DIR/registry.pid"))"
  else
    echo "registry: down"
    up=1
  fi
  return "$up"
}

cmd_check() { # check DIR: read-only, for make; prints "MOTO_PORT REGISTRY_PORT" when running
  LOCAL_STATE_DIR=$1
  TLS_DIR="$LOCAL_STATE_DIR/tls"
  recorded_stack_running || return 1
  printf '%s %s\n' "$(stack_field "$LOCAL_STATE_DIR/stack-id" moto_port)" "$(stack_field "$LOCAL_STATE_DIR/stack-id" registry_port)"
}

main() {
  if [[ "${1:-}" == check ]]; then
    cmd_check "${2:?usage: local-stack.sh check DIR}"
    return
  fi
  require_var LOCAL_MOTO_PORT LOCAL_REGISTRY_PORT LOCAL_STATE_DIR
  TLS_DIR="$LOCAL_STATE_DIR/tls"
  case "${1:-}" in
    up) require_var MOTO_SERVER LOCAL_SERVING_NETWORK && cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) die "usage: local-stack.sh up|down|status" ;;
  esac
}

main "$@"
