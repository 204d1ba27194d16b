#!/usr/bin/env bash
# The product's processes on one machine: start | stop | status.
# engine (8081), auth (8082), gateway (8080) and the example's notification stub (8089),
# each a separate process logging to .local/logs/<name>.log. Needs Kafka and FerretDB.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PY=$HOOKFLOW_ROOT/.venv/bin/python
LOG_DIR=$LOCAL_DIR/logs
RUN_DIR=$LOCAL_DIR/run
ADMIN_KEY_FILE=$LOCAL_DIR/admin-key
ACTIVATION_KEY_FILE=$LOCAL_DIR/activation-key
INTERNAL_KEY_FILE=$LOCAL_DIR/internal-key

ENGINE_PORT=${HOOKFLOW_ENGINE_PORT:-8081}
AUTH_PORT=${HOOKFLOW_AUTH_PORT:-8082}
GATEWAY_PORT=${HOOKFLOW_GATEWAY_PORT:-8080}
STUB_PORT=${HOOKFLOW_STUB_PORT:-8089}
SERVICES=(engine auth gateway stub)

port_of() {
  case $1 in
    engine) echo "$ENGINE_PORT" ;; auth) echo "$AUTH_PORT" ;;
    gateway) echo "$GATEWAY_PORT" ;; stub) echo "$STUB_PORT" ;;
  esac
}

secret_in() {  # a random secret kept in file $1 (owner-only), made on first use
  (umask 077; [ -s "$1" ] || python3 -c 'import secrets;print(secrets.token_urlsafe(24))' >"$1")
  chmod 600 "$1"
  cat "$1"
}
admin_key() { secret_in "$ADMIN_KEY_FILE"; }
activation_key() { secret_in "$ACTIVATION_KEY_FILE"; }
internal_key() { secret_in "$INTERNAL_KEY_FILE"; }

export_settings() {
  export KAFKA_BOOTSTRAP_SERVERS=${KAFKA_BOOTSTRAP_SERVERS:-$("$DEPLOY_DIR/kafka.sh" bootstrap)}
  if [ "${HOOKFLOW_KAFKA_BROKERS:-1}" = 3 ]; then  # every topic on the three brokers
    export HOOKFLOW_ENGINE_TOPIC_REPLICATION_FACTOR=${HOOKFLOW_ENGINE_TOPIC_REPLICATION_FACTOR:-3}
  fi
  export MONGODB_URL=${MONGODB_URL:-mongodb://$MONGO_HOST:$MONGO_PORT/}
  export HOOKFLOW_ENGINE_PORT=$ENGINE_PORT HOOKFLOW_AUTH_PORT=$AUTH_PORT
  export HOOKFLOW_GATEWAY_PORT=$GATEWAY_PORT
  export HOOKFLOW_ENGINE_PUBLIC_URL=${HOOKFLOW_ENGINE_PUBLIC_URL:-http://127.0.0.1:$GATEWAY_PORT}
  export HOOKFLOW_ENGINE_AUTH_URL=http://127.0.0.1:$AUTH_PORT
  export HOOKFLOW_GATEWAY_AUTH_URL=http://127.0.0.1:$AUTH_PORT
  # the gateway is the one origin's front door (schemas/src/schemas/frontdoor.py): it
  # passes the engine's and auth's paths on, and auth believes the client address it adds
  export HOOKFLOW_GATEWAY_ENGINE_URL=http://127.0.0.1:$ENGINE_PORT
  export HOOKFLOW_AUTH_TRUSTED_PROXIES=${HOOKFLOW_AUTH_TRUSTED_PROXIES:-127.0.0.1}
  # flows may call the example's stub, and no other internal address (docs/security.md)
  export HOOKFLOW_ENGINE_EGRESS_ALLOW=${HOOKFLOW_ENGINE_EGRESS_ALLOW:-127.0.0.1:$STUB_PORT}
}

# The admin key goes only to the processes that check it; the internal key (auth's
# /internal/... routes) to auth and its two callers.
secrets_of() {
  case $1 in
    engine) echo "HOOKFLOW_ENGINE_ADMIN_KEY=$(admin_key) HOOKFLOW_ENGINE_ACTIVATION_KEY=$(activation_key) HOOKFLOW_INTERNAL_KEY=$(internal_key)" ;;
    auth) echo "HOOKFLOW_AUTH_ADMIN_KEY=$(admin_key) HOOKFLOW_INTERNAL_KEY=$(internal_key)" ;;
    gateway) echo "HOOKFLOW_GATEWAY_ADMIN_KEY=$(admin_key) HOOKFLOW_GATEWAY_ACTIVATION_KEY=$(activation_key) HOOKFLOW_INTERNAL_KEY=$(internal_key)" ;;
  esac
}

command_of() {
  case $1 in
    engine) echo "$PY -m engine" ;;
    auth) echo "$PY -m auth" ;;
    gateway) echo "$PY -m gateway" ;;
    stub) echo "$PY $HOOKFLOW_ROOT/examples/stub.py --port $STUB_PORT" ;;
  esac
}

ready_path() { [ "$1" = stub ] && echo /healthz || echo /readyz; }

is_ready() {
  python3 - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

start_one() {
  local name=$1 port pidfile url started=$SECONDS
  port=$(port_of "$name")
  pidfile=$RUN_DIR/$name.pid
  url=http://127.0.0.1:$port$(ready_path "$name")
  if pid_alive "$pidfile"; then
    # running means answering: a process that was just killed, is shutting down or hangs
    # is still alive for a while, and must not pass for a running service
    local since=$SECONDS
    while ((SECONDS - since < 10)); do
      if is_ready "$url"; then
        log "$name is already running (pid $(cat "$pidfile"))"
        return 0
      fi
      pid_alive "$pidfile" || break
      sleep 0.2
    done
    if pid_alive "$pidfile"; then
      log "$name (pid $(cat "$pidfile")) does not answer on port $port; replacing it"
      stop_pid "$pidfile" "$name" 5
    fi
    rm -f "$pidfile"
    for _ in $(seq 1 50); do port_open 127.0.0.1 "$port" || break; sleep 0.1; done
  fi
  port_open 127.0.0.1 "$port" && die "port $port for $name is taken; set HOOKFLOW_${name^^}_PORT"
  # shellcheck disable=SC2046
  env $(secrets_of "$name") nohup $(command_of "$name") >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 600); do
    pid_alive "$pidfile" || die "$name exited during start; see $LOG_DIR/$name.log"
    if is_ready "$url"; then
      log "$name is ready on port $port after $((SECONDS - started))s"
      return 0
    fi
    sleep 0.1
  done
  die "$name did not become ready within 60s; see $LOG_DIR/$name.log"
}

start() {
  [ -x "$PY" ] || die "the virtual environment is missing; run 'make install'"
  umask 077  # logs, pid files and the admin key: readable by this user only
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  touch "$LOG_DIR"/{engine,auth,gateway,stub}.log
  chmod 600 "$LOG_DIR"/*.log
  export_settings
  # the engine first: it creates the topics and publishes the flow registry
  for name in "${SERVICES[@]}"; do start_one "$name"; done
}

stop() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    stop_pid "$RUN_DIR/${SERVICES[$i]}.pid" "${SERVICES[$i]}" 20
  done
}

status() {
  local name rc=0
  for name in "${SERVICES[@]}"; do
    if pid_alive "$RUN_DIR/$name.pid"; then
      echo "$name: running (pid $(cat "$RUN_DIR/$name.pid")) on port $(port_of "$name")"
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  start | stop | status) "$1" ;;
  admin-key) admin_key ;;
  *) echo "usage: $0 start|stop|status|admin-key" >&2; exit 2 ;;
esac
