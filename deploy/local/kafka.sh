#!/usr/bin/env bash
# Apache Kafka, single node KRaft, without Docker: install | start | stop | status.
# The broker's classpath comes from kafka/pom.xml through Maven; data and logs live
# under .local/kafka. Ports: HOOKFLOW_KAFKA_PORT (19092), HOOKFLOW_KAFKA_CONTROLLER_PORT (19093).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

HOME_DIR=$LOCAL_DIR/kafka
LIB_DIR=$HOME_DIR/lib
# data, logs and the pid of one broker; another directory runs another broker (tests)
STATE_DIR=${HOOKFLOW_KAFKA_STATE_DIR:-$HOME_DIR}
DATA_DIR=$STATE_DIR/data
LOG_DIR=$STATE_DIR/logs
PID_FILE=$STATE_DIR/kafka.pid
PROPS=$STATE_DIR/server.properties
POM=$DEPLOY_DIR/kafka/pom.xml
STAMP=$LIB_DIR/.installed

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
  cat >"$PROPS" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
}

java_cmd() {
  # The JVM command line shared by the storage tool and the broker.
  JAVA_CMD=(java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC
    -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$DEPLOY_DIR/log4j2.properties"
    -cp "$LIB_DIR/*")
}

running() { pid_alive "$PID_FILE"; }

ready() { python3 "$DEPLOY_DIR/kafka_ready.py" "$KAFKA_HOST" "$KAFKA_PORT" 2>/dev/null; }

start() {
  if running; then
    log "Kafka is already running (pid $(cat "$PID_FILE"), $KAFKA_HOST:$KAFKA_PORT)"
    return 0
  fi
  port_open "$KAFKA_HOST" "$KAFKA_PORT" &&
    die "port $KAFKA_PORT is taken by another process; set HOOKFLOW_KAFKA_PORT"
  install
  need python3 "to check that Kafka is ready"
  write_properties
  local cluster_file=$STATE_DIR/cluster.id
  [ -f "$cluster_file" ] || python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' >"$cluster_file"
  java_cmd
  "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$(cat "$cluster_file")" -c "$PROPS" --ignore-formatted \
    >"$LOG_DIR/format.log" 2>&1 || die "formatting Kafka storage failed; see $LOG_DIR/format.log"
  : >"$LOG_DIR/server.log"
  umask 077  # its logs and data: readable by this user only
  chmod -R go-rwx "$LOG_DIR" "$DATA_DIR" "$PID_FILE" 2>/dev/null || true
  local started=$SECONDS
  nohup "${JAVA_CMD[@]}" kafka.Kafka "$PROPS" >"$LOG_DIR/stdout.log" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 1200); do
    running || die "Kafka exited during start; see $LOG_DIR/server.log and $LOG_DIR/stdout.log"
    if grep -q "Kafka Server started" "$LOG_DIR/server.log" 2>/dev/null && ready; then
      log "Kafka is ready on $KAFKA_HOST:$KAFKA_PORT after $((SECONDS - started))s"
      return 0
    fi
    sleep 0.1
  done
  stop
  die "Kafka did not become ready within 120s; see $LOG_DIR/server.log"
}

stop() { stop_pid "$PID_FILE" Kafka 60; }

status() {
  if running && ready; then
    echo "kafka: running (pid $(cat "$PID_FILE")) on $KAFKA_HOST:$KAFKA_PORT"
  elif running; then
    echo "kafka: started (pid $(cat "$PID_FILE")) but not answering on $KAFKA_HOST:$KAFKA_PORT"
    return 1
  else
    echo "kafka: stopped"
    return 1
  fi
}

mkdir -p "$HOME_DIR" "$STATE_DIR"
case "${1:-}" in
  install | start | stop | status) "$1" ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
