#!/usr/bin/env bash
# A private RabbitMQ 3.10 node for development, tests and CI: its own port,
# node name and directory, run as root without systemd.
#
#   scripts/broker.sh start|stop|restart|status|url|tls-url|ctl ARGS...
#
# Environment (defaults):
#   GENWORKER_BROKER_DIR   .run/broker         everything the node writes
#   GENWORKER_BROKER_PORT  5679                AMQP port; TLS is PORT+1, dist PORT+20000
#   GENWORKER_BROKER_NAME  genworker-PORT      Erlang node name (@localhost)
#   GENWORKER_BROKER_EXTRA_CONF                extra rabbitmq.conf lines (tests)
#   GENWORKER_BROKER_ADVANCED                  advanced.config contents (tests), default [].
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${GENWORKER_BROKER_PORT:-5679}
tls_port=$((port + 1))
dir=${GENWORKER_BROKER_DIR:-$root/.run/broker-$port}
node=${GENWORKER_BROKER_NAME:-genworker-$port}@localhost
rmq_bin=/usr/lib/rabbitmq/bin

export HOME=$dir            # the Erlang cookie lives here, private to this node
export RABBITMQ_NODENAME=$node
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$((port + 20000))
export RABBITMQ_MNESIA_BASE=$dir/mnesia
export RABBITMQ_LOG_BASE=$dir/log
export RABBITMQ_FEATURE_FLAGS_FILE=$dir/feature_flags
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_PID_FILE=$dir/rabbit.pid
export RABBITMQ_QUORUM_DIR=$dir/quorum
export RABBITMQ_STREAM_DIR=$dir/stream
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
export RABBITMQ_LOGS=$dir/log/rabbit.log
export ERL_CRASH_DUMP=$dir/erl_crash.dump   # a dying node writes here, not into the current directory

install_if_missing() {
  [ -x "$rmq_bin/rabbitmq-server" ] && command -v openssl >/dev/null && return
  echo "broker.sh: installing rabbitmq-server" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server openssl >/dev/null
}

make_tls() {
  # A CA, a server certificate for localhost signed by it, and a second,
  # unrelated CA so tests can show a verification failure.
  local t=$dir/tls
  [ -f "$t/server.pem" ] && return
  mkdir -p "$t"
  (
    cd "$t"
    for ca in ca other-ca; do
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=genworker test $ca" \
        -keyout "$ca.key" -out "$ca.pem" 2>/dev/null
    done
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost\n' > san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile san.ext -out server.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=genworker-client" -keyout client.key -out client.csr 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -out client.pem 2>/dev/null
    chmod 644 ./*.key
  )
}

write_config() {
  mkdir -p "$dir/log" "$dir/mnesia"
  echo '[].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
  echo "${GENWORKER_BROKER_ADVANCED:-[].}" > "$RABBITMQ_ADVANCED_CONFIG_FILE"
  : > "$RABBITMQ_CONF_ENV_FILE"
  {
    cat "$root/config/rabbitmq.conf"
    echo
    echo "# added by scripts/broker.sh"
    echo "listeners.ssl.default = 127.0.0.1:$tls_port"
    echo "ssl_options.cacertfile = $dir/tls/ca.pem"
    echo "ssl_options.certfile = $dir/tls/server.pem"
    echo "ssl_options.keyfile = $dir/tls/server.key"
    echo "ssl_options.verify = verify_peer"
    echo "ssl_options.fail_if_no_peer_cert = false"
    echo "log.console = false"
    echo "log.file.level = info"
    if [ -n "${GENWORKER_BROKER_EXTRA_CONF:-}" ]; then printf '%s\n' "$GENWORKER_BROKER_EXTRA_CONF"; fi
  } > "$RABBITMQ_CONFIG_FILE"
}

is_up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

pid() { [ -f "$RABBITMQ_PID_FILE" ] && cat "$RABBITMQ_PID_FILE" 2>/dev/null || true; }

start() {
  if is_up; then echo "broker.sh: already running on $port" >&2; return 0; fi
  install_if_missing
  mkdir -p "$dir"
  make_tls
  write_config
  nohup "$rmq_bin/rabbitmq-server" > "$dir/log/stdout.log" 2>&1 < /dev/null &
  echo $! > "$dir/launcher.pid"
  for _ in $(seq 1 600); do
    if is_up; then
      # The listener opens late in boot; wait until the node answers, too.
      "$rmq_bin/rabbitmqctl" -n "$node" -q await_startup --timeout 60 >/dev/null 2>&1 || true
      echo "broker.sh: RabbitMQ up on 127.0.0.1:$port (TLS $tls_port), dir $dir" >&2
      return 0
    fi
    if ! kill -0 "$(cat "$dir/launcher.pid")" 2>/dev/null; then
      echo "broker.sh: RabbitMQ exited during boot; see $dir/log" >&2
      tail -20 "$dir/log/stdout.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "broker.sh: RabbitMQ did not open port $port within 60 s" >&2
  return 1
}

stop() {
  local p; p=$(pid)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    timeout 30 "$rmq_bin/rabbitmqctl" -n "$node" -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || kill -9 "$p" 2>/dev/null || true
  elif is_up || "$rmq_bin/rabbitmqctl" -n "$node" -q ping >/dev/null 2>&1; then
    # No pid file (a boot that outlived its launcher's record): ask the node itself, and
    # wait until it no longer answers.
    timeout 30 "$rmq_bin/rabbitmqctl" -n "$node" -q stop >/dev/null 2>&1 || true
    for _ in $(seq 1 300); do "$rmq_bin/rabbitmqctl" -n "$node" -q ping >/dev/null 2>&1 || break; sleep 0.1; done
  fi
  local l; l=$(cat "$dir/launcher.pid" 2>/dev/null || true)
  [ -n "$l" ] && kill "$l" 2>/dev/null || true
  # Wait for the node itself to be gone, not only its port, so a start right after works.
  for _ in $(seq 1 300); do
    if ! is_up && { [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; }; then break; fi
    sleep 0.1
  done
  rm -f "$RABBITMQ_PID_FILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if is_up; then echo "up on $port"; else echo "down"; exit 1; fi ;;
  url) echo "amqp://guest:guest@127.0.0.1:$port/" ;;
  tls-url) echo "amqps://guest:guest@localhost:$tls_port/?cacertfile=$dir/tls/ca.pem" ;;
  dir) echo "$dir" ;;
  ctl) shift; exec "$rmq_bin/rabbitmqctl" -n "$node" "$@" ;;
  *) echo "usage: scripts/broker.sh start|stop|restart|status|url|tls-url|dir|ctl ARGS" >&2; exit 2 ;;
esac
