#!/usr/bin/env bash
# A three-node RabbitMQ 3.10 cluster on this machine, for tests, the soak and demos: each
# node is a scripts/broker.sh node (own port, node name and directory) with one shared
# Erlang cookie; nodes 2 and 3 join node 1.
#
#   scripts/cluster.sh start|stop|status|url|urls
#   scripts/cluster.sh stop-node N | start-node N | restart-node N
#   scripts/cluster.sh ctl N ARGS...          rabbitmqctl against node N
#
# Environment (defaults):
#   GENWORKER_CLUSTER_PORTS  "5711 5721 5731"   AMQP ports (TLS PORT+1, distribution PORT+20000)
#   GENWORKER_CLUSTER_DIR    .run/cluster        the nodes' directories
#   GENWORKER_BROKER_EXTRA_CONF / GENWORKER_BROKER_ADVANCED   passed to every node
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
read -r -a ports <<< "${GENWORKER_CLUSTER_PORTS:-5711 5721 5731}"
base=${GENWORKER_CLUSTER_DIR:-$root/.run/cluster}

node_env() { # N → the environment broker.sh needs for node N
  local port=${ports[$(($1 - 1))]}
  echo "GENWORKER_BROKER_PORT=$port GENWORKER_BROKER_DIR=$base/node$1 GENWORKER_BROKER_NAME=genworker-cluster-$port"
}

broker() { # N ARGS → scripts/broker.sh ARGS for node N
  local n=$1; shift
  env $(node_env "$n") "$root/scripts/broker.sh" "$@"
}

node_name() { echo "genworker-cluster-${ports[$(($1 - 1))]}@localhost"; }

cookie() {
  mkdir -p "$base"
  [ -f "$base/cookie" ] || (head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 32 > "$base/cookie")
  for n in 1 2 3; do
    mkdir -p "$base/node$n"
    if ! cmp -s "$base/cookie" "$base/node$n/.erlang.cookie" 2>/dev/null; then
      install -m 400 "$base/cookie" "$base/node$n/.erlang.cookie"
    fi
  done
}

joined() { # N → whether node N is in node 1's cluster
  broker 1 ctl -q cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name "$1")\""
}

start() {
  cookie
  # In parallel: a node that left the cluster before the others waits at boot for the one
  # that left last (Mnesia), so one at a time could wait forever.
  local pids=() failed=0
  for n in 1 2 3; do broker "$n" start & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  [ "$failed" = 0 ] || { echo "cluster.sh: a node did not start" >&2; return 1; }
  for n in 2 3; do
    if joined "$n"; then continue; fi
    broker "$n" ctl -q stop_app
    broker "$n" ctl -q reset
    broker "$n" ctl -q join_cluster "$(node_name 1)"
    broker "$n" ctl -q start_app
    broker "$n" ctl -q await_startup --timeout 60 >/dev/null
  done
  echo "cluster.sh: three nodes up: $(urls)" >&2
}

stop_node() { broker "$1" stop || true; }

stop() { for n in 3 2 1; do stop_node "$n"; done; }

status() {
  local down=0
  for n in 1 2 3; do
    if broker "$n" status >/dev/null 2>&1; then echo "node $n: up on ${ports[$(($n - 1))]}"; else echo "node $n: down"; down=1; fi
  done
  return $down
}

urls() { local out=(); for p in "${ports[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$p/"); done; (IFS=,; echo "${out[*]}"); }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) echo "amqp://guest:guest@127.0.0.1:${ports[0]}/" ;;
  urls) urls ;;
  stop-node) stop_node "$2" ;;
  start-node) broker "$2" start ;;
  restart-node) stop_node "$2"; broker "$2" start ;;
  ctl) n=$2; shift 2; broker "$n" ctl "$@" ;;
  *) echo "usage: scripts/cluster.sh start|stop|status|url|urls|stop-node N|start-node N|restart-node N|ctl N ARGS" >&2; exit 2 ;;
esac
