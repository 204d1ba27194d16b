#!/usr/bin/env bash
# Run a command with Kafka and FerretDB available, then stop what this script started.
#
# A service whose address is already set (KAFKA_BOOTSTRAP_SERVERS, MONGODB_URL) is used
# as is; a local one that is already running is reused and left running.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -gt 0 ] || { echo "usage: $0 command [args...]" >&2; exit 2; }

started=()
cleanup() {
  local svc
  for svc in "${started[@]}"; do "$DEPLOY_DIR/$svc.sh" stop || true; done
}
trap cleanup EXIT

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  "$DEPLOY_DIR/kafka.sh" status >/dev/null 2>&1 || { "$DEPLOY_DIR/kafka.sh" start; started+=(kafka); }
  export KAFKA_BOOTSTRAP_SERVERS=$("$DEPLOY_DIR/kafka.sh" bootstrap)
fi
if [ -z "${MONGODB_URL:-}" ]; then
  "$DEPLOY_DIR/ferretdb.sh" status >/dev/null 2>&1 || { "$DEPLOY_DIR/ferretdb.sh" start; started+=(ferretdb); }
  export MONGODB_URL=mongodb://$MONGO_HOST:$MONGO_PORT/
fi

"$@"
