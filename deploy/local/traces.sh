#!/usr/bin/env bash
# `make traces`: a local Jaeger (v2, traces in memory), the product exporting its traces to
# it over OTLP, and one traced callback of the example order flow shown as a waterfall.
#   deploy/local/traces.sh up       all of that (restarts the services with tracing on)
#   deploy/local/traces.sh jaeger   start Jaeger only (prints its OTLP and query addresses)
#   deploy/local/traces.sh stop     stop Jaeger (`make down` does too)
#   deploy/local/traces.sh status
# Jaeger is built once from the Go module proxy (deploy/tools.sh jaeger, ~8 minutes on
# 2 cores); its UI is not part of the module, so the trace is read from its query API
# (GET :16686/api/traces/<id>), which also serves any Jaeger UI pointed at it.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OTLP_PORT=${HOOKFLOW_JAEGER_OTLP_PORT:-4318}
QUERY_PORT=${HOOKFLOW_JAEGER_QUERY_PORT:-16686}
export HOOKFLOW_JAEGER_OTLP_PORT=$OTLP_PORT HOOKFLOW_JAEGER_QUERY_PORT=$QUERY_PORT
export HOOKFLOW_JAEGER_QUERY_GRPC_PORT=${HOOKFLOW_JAEGER_QUERY_GRPC_PORT:-16685}
export HOOKFLOW_JAEGER_HEALTH_PORT=${HOOKFLOW_JAEGER_HEALTH_PORT:-13133}
PIDFILE=$LOCAL_DIR/run/jaeger.pid
LOG_FILE=$LOCAL_DIR/logs/jaeger.log
QUERY=http://127.0.0.1:$QUERY_PORT

jaeger() {
  if pid_alive "$PIDFILE"; then
    log "jaeger is already running (pid $(cat "$PIDFILE"))"
  else
    local bin
    bin=$("$HOOKFLOW_ROOT/deploy/tools.sh" jaeger)
    mkdir -p "$LOCAL_DIR/run" "$LOCAL_DIR/logs"
    port_open 127.0.0.1 "$OTLP_PORT" && die "port $OTLP_PORT is taken; set HOOKFLOW_JAEGER_OTLP_PORT"
    nohup "$bin" --config "$HOOKFLOW_ROOT/deploy/monitoring/jaeger/config.yaml" >>"$LOG_FILE" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
      pid_alive "$PIDFILE" || die "jaeger exited during start; see $LOG_FILE"
      port_open 127.0.0.1 "$QUERY_PORT" && port_open 127.0.0.1 "$OTLP_PORT" && break
      sleep 0.1
    done
    log "jaeger is ready: OTLP http://127.0.0.1:$OTLP_PORT, query $QUERY"
  fi
}

up() {
  jaeger
  # the services export every span (a local look, not a load test: docs/operations.md
  # says what tracing costs); batches leave every 200 ms
  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT
  export OTEL_BSP_SCHEDULE_DELAY=200
  "$DEPLOY_DIR/services.sh" stop
  "$DEPLOY_DIR/up.sh" >/dev/null
  HOOKFLOW_ADMIN_KEY=$("$DEPLOY_DIR/services.sh" admin-key) "$HOOKFLOW_ROOT/.venv/bin/python" \
    "$DEPLOY_DIR/trace_example.py" --gateway "http://127.0.0.1:${HOOKFLOW_GATEWAY_PORT:-8080}" \
    --jaeger "$QUERY" --flow "$LOCAL_DIR/example-flow.json" --out "$LOCAL_DIR/traces"
  log "the services run with tracing on until 'make down' (or 'make up' after 'make down')"
}

case "${1:-}" in
  up) up ;;
  jaeger) jaeger ;;
  stop) stop_pid "$PIDFILE" jaeger 10 ;;
  status) pid_alive "$PIDFILE" && echo "jaeger: running (pid $(cat "$PIDFILE")), query $QUERY" || { echo "jaeger: stopped"; exit 1; } ;;
  *) echo "usage: $0 up|jaeger|stop|status" >&2; exit 2 ;;
esac
