#!/usr/bin/env bash
# Runs a local Apache Kafka (KRaft, broker and controller in one process) for
# hookline: the integration suite, the failure tests and trying hookline on a
# real broker.
#
#   deploy/kafka/kafka.sh start [--nodes 1|3]   fetch jars if needed, format, start, wait until it answers
#   deploy/kafka/kafka.sh stop [--nodes 1|3]    stop the cluster (every cluster without --nodes)
#   deploy/kafka/kafka.sh status [--nodes 1|3]  print each node's state (exit 1 if one is down)
#   deploy/kafka/kafka.sh env [--nodes 1|3]     print the export line for the tests
#   deploy/kafka/kafka.sh kill NODE [--nodes N]       SIGKILL one node (failure tests)
#   deploy/kafka/kafka.sh start-node NODE [--nodes N] start one node again
#   deploy/kafka/kafka.sh reset [--nodes 1|3]   stop and delete the cluster's data
#
# The jars (org.apache.kafka:kafka_2.13 and its runtime dependencies) come from
# Maven Central through pom.xml beside this script and are cached, with the
# clusters' data and logs, under ${HOOKLINE_KAFKA_HOME:-$HOME/.cache/hookline-kafka}.
#
# Ports (127.0.0.1 only), chosen to stay clear of the embedded broker's 9092:
#   one node:    broker 19092, controller 19093
#   three nodes: brokers 19192, 19292, 19392; controllers 19193, 19293, 19393
# HOOKLINE_KAFKA_PORT moves them all (19092 by default), so a second cluster,
# with its own HOOKLINE_KAFKA_HOME, can run beside CI's.
# The three-node cluster has replication factor 3 and min.insync.replicas 2,
# also for the offsets and transaction state topics.
#
# Running start twice is harmless: running nodes are left alone.
set -euo pipefail

KAFKA_VERSION=${HOOKLINE_KAFKA_VERSION:-4.1.1}
HOME_DIR=${HOOKLINE_KAFKA_HOME:-$HOME/.cache/hookline-kafka}
# Heap of each node (HOOKLINE_KAFKA_HEAP). Every test creates its own topics,
# and a broker that keeps its data dir across runs holds them all: 512m ran
# out (java.lang.OutOfMemoryError) at about 13,000 partitions here.
HEAP=${HOOKLINE_KAFKA_HEAP:-1g}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIBS=$HOME_DIR/libs-$KAFKA_VERSION

usage() {
	sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

die() {
	echo "kafka.sh: $*" >&2
	exit 1
}

cmd=${1:-}
[[ -n $cmd ]] || usage
shift
node_arg=""
nodes=""
while (($#)); do
	case $1 in
	--nodes) nodes=${2:-}; shift 2 ;;
	--nodes=*) nodes=${1#--nodes=}; shift ;;
	-h | --help) usage ;;
	*)
		[[ -z $node_arg ]] || usage
		node_arg=$1
		shift
		;;
	esac
done
case $nodes in
"" | 1 | 3) ;;
*) die "--nodes must be 1 or 3, got $nodes" ;;
esac

BASE_PORT=${HOOKLINE_KAFKA_PORT:-19092}
[[ $BASE_PORT =~ ^[0-9]+$ ]] || { echo "kafka.sh: HOOKLINE_KAFKA_PORT=$BASE_PORT is not a port number" >&2; exit 2; }

broker_port() { # nodes node
	if (($1 == 1)); then echo "$BASE_PORT"; else echo $((BASE_PORT + 100 * $2)); fi
}
controller_port() { echo $(($(broker_port "$1" "$2") + 1)); }
cluster_dir() { echo "$HOME_DIR/cluster-$1"; }
node_dir() { echo "$(cluster_dir "$1")/node-$2"; }

bootstrap() { # nodes
	local out="" i
	for ((i = 1; i <= $1; i++)); do
		out+="${out:+,}127.0.0.1:$(broker_port "$1" "$i")"
	done
	echo "$out"
}

# fetch_jars downloads the broker and its runtime dependencies once.
fetch_jars() {
	[[ -f $LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] && return
	command -v mvn >/dev/null || die "mvn is needed to fetch Kafka $KAFKA_VERSION from Maven Central (apt-get install maven)"
	command -v java >/dev/null || die "java (17 or later) is needed to run Kafka"
	echo "fetching Apache Kafka $KAFKA_VERSION and its dependencies from Maven Central into $LIBS" >&2
	local tmp=$LIBS.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$HOME_DIR"
	mvn -q -B -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
		dependency:copy-dependencies -DoutputDirectory="$tmp" >&2 ||
		die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
	[[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "mvn did not produce kafka_2.13-$KAFKA_VERSION.jar"
	rm -rf "$LIBS"
	mv "$tmp" "$LIBS"
}

java_run() { # main-class args...
	java -Xms64m -Xmx256m -cp "$LIBS/*" -Dlog4j2.configurationFile="$HOME_DIR/log4j2-tools.properties" "$@"
}

write_log_configs() {
	mkdir -p "$HOME_DIR"
	cat >"$HOME_DIR/log4j2.properties" <<'EOF'
# Broker logs: ${sys:kafka.logs.dir}/server.log, rolled at 50 MB (3 kept).
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
EOF
	cat >"$HOME_DIR/log4j2-tools.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = err
EOF
}

# write_properties writes node i's server.properties for an n-node cluster.
write_properties() { # nodes node
	local n=$1 i=$2 dir voters="" j rf isr
	dir=$(node_dir "$n" "$i")
	for ((j = 1; j <= n; j++)); do
		voters+="${voters:+,}$j@127.0.0.1:$(controller_port "$n" "$j")"
	done
	if ((n == 1)); then rf=1 isr=1; else rf=3 isr=2; fi
	mkdir -p "$dir/data" "$dir/logs"
	cat >"$dir/server.properties" <<EOF
# Written by deploy/kafka/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n" "$i"),CONTROLLER://127.0.0.1:$(controller_port "$n" "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$n" "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data

# hookline provisions its topics itself; a typo must not create one.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr

# Tests join groups all the time: no initial rebalance delay.
group.initial.rebalance.delay.ms=0
# Abort a dead producer's transaction promptly (its timeout is the client's).
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000

# Small local footprint.
num.network.threads=2
num.io.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF
}

node_pid() { # nodes node: prints the pid if that node runs
	# The properties path is unique to the node, so it finds our broker and
	# nothing else (setsid may fork, so $! is not always the broker's pid).
	pgrep -f -- "kafka.Kafka $(node_dir "$1" "$2")/server.properties\$" | head -n 1 | grep .
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

format_cluster() { # nodes
	local n=$1 id i dir
	dir=$(cluster_dir "$n")
	if [[ -f $dir/cluster.id ]]; then
		id=$(<"$dir/cluster.id")
	else
		id=$(java_run kafka.tools.StorageTool random-uuid)
		mkdir -p "$dir"
		echo "$id" >"$dir/cluster.id"
	fi
	for ((i = 1; i <= n; i++)); do
		write_properties "$n" "$i"
		if [[ ! -f $(node_dir "$n" "$i")/data/meta.properties ]]; then
			java_run kafka.tools.StorageTool format -t "$id" -c "$(node_dir "$n" "$i")/server.properties" >/dev/null ||
				die "format storage of node $i (cluster $id)"
		fi
	done
}

launch_node() { # nodes node
	local n=$1 i=$2 dir port
	dir=$(node_dir "$n" "$i")
	if node_pid "$n" "$i" >/dev/null; then
		return
	fi
	port=$(broker_port "$n" "$i")
	if port_open "$port"; then
		die "port $port is taken by another process; node $i of the $n-node cluster cannot start"
	fi
	write_properties "$n" "$i"
	[[ -f $dir/data/meta.properties ]] || format_cluster "$n"
	echo "starting kafka node $i of $n on 127.0.0.1:$port (logs: $dir/logs)" >&2
	(
		cd "$dir"
		exec setsid java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
			-Djava.awt.headless=true \
			-Dkafka.logs.dir="$dir/logs" \
			-Dlog4j2.configurationFile="$HOME_DIR/log4j2.properties" \
			-cp "$LIBS/*" kafka.Kafka "$dir/server.properties" \
			</dev/null >>"$dir/logs/stdout.log" 2>&1
	) &
}

# fresh_log keeps the last run's log aside, so that wait_nodes sees this
# run's start-up line and not the last one's.
fresh_log() { # nodes node
	local f
	f=$(node_dir "$1" "$2")/logs/server.log
	if [[ -s $f ]]; then mv "$f" "$f.prev"; fi
}

wait_nodes() { # nodes node...
	local n=$1 i deadline
	shift
	deadline=$((SECONDS + ${HOOKLINE_KAFKA_START_TIMEOUT:-120}))
	for i in "$@"; do
		while ! { port_open "$(broker_port "$n" "$i")" &&
			grep -qs "Kafka Server started" "$(node_dir "$n" "$i")/logs/server.log"; }; do
			if ! node_pid "$n" "$i" >/dev/null; then
				tail -n 30 "$(node_dir "$n" "$i")/logs/stdout.log" "$(node_dir "$n" "$i")/logs/server.log" >&2 2>/dev/null || true
				die "node $i of $n exited during start-up; logs in $(node_dir "$n" "$i")/logs"
			fi
			((SECONDS < deadline)) || die "node $i of $n did not answer within ${HOOKLINE_KAFKA_START_TIMEOUT:-120}s; logs in $(node_dir "$n" "$i")/logs"
			sleep 0.5
		done
	done
}

start_cluster() { # nodes
	local n=$1 i started=()
	fetch_jars
	write_log_configs
	format_cluster "$n"
	for ((i = 1; i <= n; i++)); do
		if ! node_pid "$n" "$i" >/dev/null; then
			fresh_log "$n" "$i"
			launch_node "$n" "$i"
			started+=("$i")
		fi
	done
	if ((${#started[@]})); then
		wait_nodes "$n" "${started[@]}"
		echo "kafka $KAFKA_VERSION: $n-node cluster up" >&2
	else
		echo "kafka $KAFKA_VERSION: $n-node cluster already running" >&2
	fi
	echo "export HOOKLINE_TEST_BROKERS=$(bootstrap "$n")"
}

stop_cluster() { # nodes
	local n=$1 i pid pids=() deadline
	for ((i = 1; i <= n; i++)); do
		if pid=$(node_pid "$n" "$i"); then
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	# All at once: a controlled shutdown of the last voters waits for a quorum.
	deadline=$((SECONDS + 30))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null; do
			if ((SECONDS >= deadline)); then
				kill -KILL "$pid" 2>/dev/null || true
				break
			fi
			sleep 0.2
		done
	done
	((${#pids[@]})) && echo "kafka: $n-node cluster stopped" >&2
	return 0
}

status_cluster() { # nodes
	local n=$1 i pid rc=0
	for ((i = 1; i <= n; i++)); do
		if pid=$(node_pid "$n" "$i"); then
			echo "$n-node cluster: node $i running (pid $pid) on 127.0.0.1:$(broker_port "$n" "$i")"
		else
			echo "$n-node cluster: node $i stopped"
			rc=1
		fi
	done
	((rc == 0)) && echo "export HOOKLINE_TEST_BROKERS=$(bootstrap "$n")"
	return $rc
}

known_clusters() {
	if [[ -n $nodes ]]; then
		echo "$nodes"
		return
	fi
	local n
	for n in 1 3; do [[ -d $(cluster_dir "$n") ]] && echo "$n"; done
	return 0
}

check_node() { # nodes
	[[ $node_arg =~ ^[0-9]+$ ]] && ((node_arg >= 1 && node_arg <= $1)) || die "NODE must be 1..$1, got '${node_arg}'"
}

case $cmd in
start)
	[[ -z $node_arg ]] || usage
	start_cluster "${nodes:-1}"
	;;
stop)
	for n in $(known_clusters); do stop_cluster "$n"; done
	;;
status)
	rc=0
	clusters=$(known_clusters)
	[[ -n $clusters ]] || { echo "no cluster under $HOME_DIR"; exit 1; }
	for n in $clusters; do status_cluster "$n" || rc=1; done
	exit $rc
	;;
env)
	echo "export HOOKLINE_TEST_BROKERS=$(bootstrap "${nodes:-1}")"
	;;
kill)
	n=${nodes:-3}
	check_node "$n"
	if pid=$(node_pid "$n" "$node_arg"); then
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		echo "kafka: node $node_arg of $n killed (pid $pid)" >&2
	else
		echo "kafka: node $node_arg of $n is not running" >&2
	fi
	;;
start-node)
	n=${nodes:-3}
	check_node "$n"
	fetch_jars
	write_log_configs
	if node_pid "$n" "$node_arg" >/dev/null; then
		echo "kafka: node $node_arg of $n already running" >&2
	else
		fresh_log "$n" "$node_arg"
		launch_node "$n" "$node_arg"
		wait_nodes "$n" "$node_arg"
		echo "kafka: node $node_arg of $n up" >&2
	fi
	;;
reset)
	for n in $(known_clusters); do
		stop_cluster "$n"
		rm -rf "$(cluster_dir "$n")"
		echo "kafka: $n-node cluster data deleted" >&2
	done
	;;
*) usage ;;
esac
