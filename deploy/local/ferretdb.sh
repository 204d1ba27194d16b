#!/usr/bin/env bash
# FerretDB (MongoDB wire protocol) on its SQLite backend, without Docker:
# install | start | stop | status. Built with go from ferretdb/ (a wrapper module) and
# the project's patches in ferretdb/patches/ (docs/infrastructure.md says why);
# data and logs live under .local/ferretdb. Port: HOOKFLOW_MONGO_PORT (27217).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HOME_DIR=$LOCAL_DIR/ferretdb
BIN=$HOME_DIR/bin/ferretdb
# data, logs and the pid of one server; another directory runs another server (tests)
STATE_DIR=${HOOKFLOW_MONGO_STATE_DIR:-$HOME_DIR}
DATA_DIR=$STATE_DIR/data
LOG_DIR=$STATE_DIR/logs
PID_FILE=$STATE_DIR/ferretdb.pid
SRC=$DEPLOY_DIR/ferretdb
STAMP=$HOME_DIR/bin/.installed
STOCK_BIN=$HOME_DIR/bin/ferretdb-stock
BUILD_DIR=$HOME_DIR/build

install() {
  # Two builds of the same FerretDB version: bin/ferretdb with the project's patches
  # (ferretdb/patches/*.patch, what every script and the engine run) and
  # bin/ferretdb-stock without them (the differential tests compare the two).
  local want
  want=$(file_hash "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" "$SRC"/patches/*.patch)
  if [ -x "$BIN" ] && [ -x "$STOCK_BIN" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "FerretDB is installed ($BIN)"
    return 0
  fi
  need go "to build FerretDB (Go 1.24 or newer)"
  need patch "to apply the project's FerretDB patches"
  mkdir -p "$(dirname "$BIN")"
  : >"$HOME_DIR/install.log"
  build_stock >>"$HOME_DIR/install.log" 2>&1 || die "building FerretDB failed; see $HOME_DIR/install.log"
  build_patched >>"$HOME_DIR/install.log" 2>&1 || die "building patched FerretDB failed; see $HOME_DIR/install.log"
  echo "$want" >"$STAMP"
}

build_stock() {
  log "building stock FerretDB into $STOCK_BIN"
  (cd "$SRC" && go build -trimpath -o "$STOCK_BIN" .)
}

build_patched() {
  # The module source from the Go module cache, copied under .local/ and patched; the
  # wrapper module is copied beside it and built with a `replace` pointing there.
  local version module_dir
  version=$(cd "$SRC" && go list -m -f '{{.Version}}' github.com/FerretDB/FerretDB)
  module_dir=$(cd "$SRC" && go mod download -json "github.com/FerretDB/FerretDB@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$module_dir" ] || { echo "module source of FerretDB $version not found"; return 1; }
  log "patching FerretDB $version from $module_dir"
  rm -rf "$BUILD_DIR"
  mkdir -p "$BUILD_DIR/wrapper"
  cp -R "$module_dir" "$BUILD_DIR/FerretDB"
  chmod -R u+w "$BUILD_DIR/FerretDB"
  local p
  for p in "$SRC"/patches/*.patch; do
    echo "applying $(basename "$p")"
    patch -d "$BUILD_DIR/FerretDB" -p1 --forward --batch <"$p" || return 1
  done
  cp "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" "$BUILD_DIR/wrapper/"
  (cd "$BUILD_DIR/wrapper" &&
    go mod edit -replace "github.com/FerretDB/FerretDB=../FerretDB" &&
    go build -trimpath -o "$BIN" .)
  log "built patched FerretDB into $BIN"
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
  umask 077  # its logs and data: readable by this user only
  chmod -R go-rwx "$LOG_DIR" "$DATA_DIR" 2>/dev/null || true
  local started=$SECONDS
  # synchronous(normal) in WAL mode: a commit survives the server's crash (kill -9) and
  # is fsynced at checkpoints, not one by one (a standalone mongod likewise syncs its
  # journal every 100 ms); full syncs every commit. A checkpoint every 10,000 pages
  # (40 MB of WAL) instead of SQLite's 1,000: each one fsyncs and holds up the writer
  # that triggers it (docs/infrastructure.md)
  local sync=${HOOKFLOW_MONGO_SQLITE_SYNC:-normal}
  local url="file:$DATA_DIR/?_pragma=synchronous($sync)&_pragma=wal_autocheckpoint(10000)"
  # Go's collector at GOGC=400: the server's heap is small, and at the default 100 its
  # marking took 10% of the server's CPU under the engine's load (perf)
  GOGC=${HOOKFLOW_MONGO_GOGC:-400} nohup "$BIN" --listen-addr="$MONGO_HOST:$MONGO_PORT" --handler=sqlite \
    --sqlite-url="$url" --log-level="${HOOKFLOW_MONGO_LOG_LEVEL:-warn}" \
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

mkdir -p "$HOME_DIR" "$STATE_DIR"
case "${1:-}" in
  install | start | stop | status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
