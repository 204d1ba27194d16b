#!/usr/bin/env bash
# Apache Kafka in KRaft mode, without Docker: install | start [node] | stop [node] | status.
# One node by default; HOOKFLOW_KAFKA_BROKERS=3 runs a cluster of three (each broker and
# controller, replication factor 3, min.insync.replicas 2). The classpath comes from
# kafka/pom.xml through Maven; data and logs live under .local/kafka (node-<i>/ each in a
# cluster). Ports: HOOKFLOW_KAFKA_PORT (19092) and HOOKFLOW_KAFKA_CONTROLLER_PORT (19093)
# for node 1, each next node two higher (19094/19095, 19096/19097).
# HOOKFLOW_KAFKA_AUTHORIZER=1 turns Kafka's ACLs on (everything allowed until an ACL
# says otherwise): tests deny a client its rights with them.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HOME_DIR=$LOCAL_DIR/kafka
LIB_DIR=$HOME_DIR/lib
# the data, logs and pids; another directory runs another Kafka (tests)
STATE_DIR=${HOOKFLOW_KAFKA_STATE_DIR:-$HOME_DIR}
BROKERS=${HOOKFLOW_KAFKA_BROKERS:-1}
AUTHORIZER=${HOOKFLOW_KAFKA_AUTHORIZER:-0}
POM=$DEPLOY_DIR/kafka/pom.xml
STAMP=$LIB_DIR/.installed

case "$BROKERS" in 1 | 3) ;; *) die "HOOKFLOW_KAFKA_BROKERS is 1 or 3, not $BROKERS" ;; esac

# node <i>: sets the node's directory, files and ports
node() {
  NODE=$1
  if [ "$BROKERS" = 1 ]; then NODE_DIR=$STATE_DIR; else NODE_DIR=$STATE_DIR/node-$NODE; fi
  DATA_DIR=$NODE_DIR/data
  LOG_DIR=$NODE_DIR/logs
  PID_FILE=$NODE_DIR/kafka.pid
  PROPS=$NODE_DIR/server.properties
  NODE_PORT=$((KAFKA_PORT + 2 * (NODE - 1)))
  NODE_CONTROLLER_PORT=$((KAFKA_CONTROLLER_PORT + 2 * (NODE - 1)))
}

voters() {
  local i out=""
  for i in $(seq 1 "$BROKERS"); do
    out+="${out:+,}$i@$KAFKA_HOST:$((KAFKA_CONTROLLER_PORT + 2 * (i - 1)))"
  done
  echo "$out"
}

install() {
  local want
  want=$(file_hash "$POM")
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "Kafka libraries are installed ($LIB_DIR)"
    return 0
  fi
  need java "to run Kafka (a JDK 17 or newer)"
  need mvn "to fetch Kafka's jars (Apache Maven)"
  log "installing Kafka libraries into $LIB_DIR"
  rm -rf "$LIB_DIR"
  mkdir -p "$LIB_DIR"
  mvn -q -B -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB_DIR" >"$HOME_DIR/install.log" 2>&1 ||
    die "Maven could not fetch Kafka's jars; see $HOME_DIR/install.log"
  echo "$want" >"$STAMP"
}

write_properties() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  local replicas=$BROKERS isr=$((BROKERS > 1 ? 2 : 1))
  cat >"$PROPS" <<PROPS
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$(voters)
listeners=PLAINTEXT://$KAFKA_HOST:$NODE_PORT,CONTROLLER://$KAFKA_HOST:$NODE_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$NODE_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
default.replication.factor=$replicas
min.insync.replicas=$isr
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
unclean.leader.election.enable=false
# a broker that stops heartbeating is fenced (out of every ISR, its partitions led
# elsewhere) after 3 s instead of 9: a dead broker holds acks=all writes back that long
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
PROPS
  if [ "$AUTHORIZER" = 1 ]; then
    cat >>"$PROPS" <<PROPS
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
PROPS
  fi
}

java_cmd() {
  # The JVM command line shared by the storage tool and the broker.
  JAVA_CMD=(java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$DEPLOY_DIR/log4j2.properties"
    -cp "$LIB_DIR/*")
}

running() { pid_alive "$PID_FILE"; }

ready() { python3 "$DEPLOY_DIR/kafka_ready.py" "$KAFKA_HOST" "$NODE_PORT" 2>/dev/null; }

launch() {
  # launch <node>: format its storage (once) and start it in the background
  node "$1"
  if running; then
    log "Kafka node $NODE is already running (pid $(cat "$PID_FILE"), $KAFKA_HOST:$NODE_PORT)"
    return 0
  fi
  port_open "$KAFKA_HOST" "$NODE_PORT" &&
    die "port $NODE_PORT is taken by another process; set HOOKFLOW_KAFKA_PORT"
  write_properties
  local cluster_file=$STATE_DIR/cluster.id
  [ -f "$cluster_file" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$cluster_file"
  java_cmd
  "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$(cat "$cluster_file")" -c "$PROPS" --ignore-formatted \
    >"$LOG_DIR/format.log" 2>&1 || die "formatting Kafka storage failed; see $LOG_DIR/format.log"
  : >"$LOG_DIR/server.log"
  umask 077  # its logs and data: readable by this user only
  chmod -R go-rwx "$LOG_DIR" "$DATA_DIR" "$PID_FILE" 2>/dev/null || true
  nohup "${JAVA_CMD[@]}" kafka.Kafka "$PROPS" >"$LOG_DIR/stdout.log" 2>&1 &
  echo $! >"$PID_FILE"
}

await_ready() {
  # await_ready <node>: until it answers (a cluster's node needs a quorum to)
  node "$1"
  local started=$SECONDS
  for _ in $(seq 1 1200); do
    running || die "Kafka node $NODE exited during start; see $LOG_DIR/server.log and $LOG_DIR/stdout.log"
    if grep -q "Kafka Server started" "$LOG_DIR/server.log" 2>/dev/null && ready; then
      log "Kafka is ready on $KAFKA_HOST:$NODE_PORT after $((SECONDS - started))s"
      return 0
    fi
    sleep 0.1
  done
  stop_node "$NODE"
  die "Kafka node $NODE did not become ready within 120s; see $LOG_DIR/server.log"
}

nodes() { if [ -n "${1:-}" ]; then echo "$1"; else seq 1 "$BROKERS"; fi; }

start() {
  install
  need python3 "to check that Kafka is ready"
  local i
  for i in $(nodes "${1:-}"); do launch "$i"; done  # together: a node waits for a quorum
  for i in $(nodes "${1:-}"); do await_ready "$i"; done
}

stop_node() { node "$1"; stop_pid "$PID_FILE" "Kafka node $NODE" 60; }

stop() {
  # every node at once: a cluster's last node cannot shut down cleanly without a quorum
  local i
  for i in $(nodes "${1:-}"); do stop_node "$i" & done
  wait
}

status() {
  local i rc=0
  for i in $(nodes "${1:-}"); do
    node "$i"
    local name=kafka
    [ "$BROKERS" = 1 ] || name="kafka node $NODE"
    if running && ready; then
      echo "$name: running (pid $(cat "$PID_FILE")) on $KAFKA_HOST:$NODE_PORT"
    elif running; then
      echo "$name: started (pid $(cat "$PID_FILE")) but not answering on $KAFKA_HOST:$NODE_PORT"
      rc=1
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  return $rc
}

# the bootstrap servers: every node's address
bootstrap() {
  local i out=""
  for i in $(seq 1 "$BROKERS"); do out+="${out:+,}$KAFKA_HOST:$((KAFKA_PORT + 2 * (i - 1)))"; done
  echo "$out"
}

mkdir -p "$HOME_DIR" "$STATE_DIR"
case "${1:-}" in
  install | bootstrap) "$1" ;;
  start | stop | status) "$1" "${2:-}" ;;
  *) echo "usage: $0 install|start [node]|stop [node]|status [node]|bootstrap" >&2; exit 2 ;;
esac
