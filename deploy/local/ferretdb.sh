#!/usr/bin/env bash
# FerretDB (MongoDB wire protocol) on its SQLite backend, without Docker:
# install | start | stop | status. Built with go from ferretdb/ (a wrapper module);
# data and logs live under .local/ferretdb. Port: HOOKFLOW_MONGO_PORT (27217).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HOME_DIR=$LOCAL_DIR/ferretdb
BIN=$HOME_DIR/bin/ferretdb
DATA_DIR=$HOME_DIR/data
LOG_DIR=$HOME_DIR/logs
PID_FILE=$HOME_DIR/ferretdb.pid
SRC=$DEPLOY_DIR/ferretdb
STAMP=$HOME_DIR/bin/.installed

install() {
  local want
  want=$(file_hash "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go")
  if [ -x "$BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "FerretDB is installed ($BIN)"
    return 0
  fi
  need go "to build FerretDB (Go 1.24 or newer)"
  log "building FerretDB into $BIN"
  mkdir -p "$(dirname "$BIN")"
  (cd "$SRC" && go build -trimpath -o "$BIN" .) >"$HOME_DIR/install.log" 2>&1 ||
    die "building FerretDB failed; see $HOME_DIR/install.log"
  echo "$want" >"$STAMP"
}

running() { pid_alive "$PID_FILE"; }

ready() {
  # A MongoDB ping needs a driver; an accepting port after the "listening" line is
  # the best check without one. The Python smoke tests ping for real.
  port_open "$MONGO_HOST" "$MONGO_PORT"
}

start() {
  if running; then
    log "FerretDB is already running (pid $(cat "$PID_FILE"), $MONGO_HOST:$MONGO_PORT)"
    return 0
  fi
  port_open "$MONGO_HOST" "$MONGO_PORT" &&
    die "port $MONGO_PORT is taken by another process; set HOOKFLOW_MONGO_PORT"
  install
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  local started=$SECONDS
  nohup "$BIN" --listen-addr="$MONGO_HOST:$MONGO_PORT" --handler=sqlite \
    --sqlite-url="file:$DATA_DIR/" --log-level="${HOOKFLOW_MONGO_LOG_LEVEL:-warn}" \
    >"$LOG_DIR/ferretdb.log" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 300); do
    running || die "FerretDB exited during start; see $LOG_DIR/ferretdb.log"
    if ready; then
      log "FerretDB is ready on $MONGO_HOST:$MONGO_PORT after $((SECONDS - started))s"
      return 0
    fi
    sleep 0.1
  done
  stop
  die "FerretDB did not become ready within 30s; see $LOG_DIR/ferretdb.log"
}

stop() { stop_pid "$PID_FILE" FerretDB 15; }

status() {
  if running && ready; then
    echo "ferretdb: running (pid $(cat "$PID_FILE")) on $MONGO_HOST:$MONGO_PORT"
  elif running; then
    echo "ferretdb: started (pid $(cat "$PID_FILE")) but not answering on $MONGO_HOST:$MONGO_PORT"
    return 1
  else
    echo "ferretdb: stopped"
    return 1
  fi
}

mkdir -p "$HOME_DIR"
case "${1:-}" in
  install | start | stop | status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
