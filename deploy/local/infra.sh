#!/usr/bin/env bash
# Kafka and FerretDB together: up | down | status | env.
# `env` prints the variables that point tests and services at them.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
  up)
    "$DEPLOY_DIR/kafka.sh" start
    "$DEPLOY_DIR/ferretdb.sh" start
    ;;
  down)
    "$DEPLOY_DIR/ferretdb.sh" stop
    "$DEPLOY_DIR/kafka.sh" stop
    ;;
  status)
    rc=0
    "$DEPLOY_DIR/kafka.sh" status || rc=1
    "$DEPLOY_DIR/ferretdb.sh" status || rc=1
    exit $rc
    ;;
  env)
    echo "export KAFKA_BOOTSTRAP_SERVERS=$("$DEPLOY_DIR/kafka.sh" bootstrap)"
    echo "export MONGODB_URL=mongodb://$MONGO_HOST:$MONGO_PORT/"
    ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
