# Shared settings and helpers for the local (Docker-free) infrastructure scripts.
# Sourced, never run. Every path and port can be overridden from the environment.

set -euo pipefail

HOOKFLOW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LOCAL_DIR=${HOOKFLOW_LOCAL_DIR:-$HOOKFLOW_ROOT/.local}
DEPLOY_DIR=$HOOKFLOW_ROOT/deploy/local

KAFKA_HOST=${HOOKFLOW_KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${HOOKFLOW_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${HOOKFLOW_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HEAP=${HOOKFLOW_KAFKA_HEAP:-512m}

MONGO_HOST=${HOOKFLOW_MONGO_HOST:-127.0.0.1}
MONGO_PORT=${HOOKFLOW_MONGO_PORT:-27217}

log() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() {
  # need <command> <what it is for>
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; it is needed $2."
}

pid_alive() {
  # pid_alive <pidfile>: true when the file names a live process (a zombie is not)
  [ -f "$1" ] || return 1
  local pid
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  # the state follows the command's name, which is in parentheses and may hold spaces
  [ ! -r "/proc/$pid/stat" ] || [ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)" != Z ]
}

port_open() {
  # port_open <host> <port>
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

stop_pid() {
  # stop_pid <pidfile> <name> [seconds]: TERM, wait, then KILL
  local pidfile=$1 name=$2 wait_s=${3:-30} pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    log "$name is not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((wait_s * 10))); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; log "$name stopped"; return 0; }
    sleep 0.1
  done
  log "$name did not stop within ${wait_s}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

file_hash() {
  cat "$@" | sha256sum | cut -c1-16
}
