#!/usr/bin/env bash
# A whole stack for the client libraries' tests (and for trying the HTTP API by hand): the
# private broker, one worker on the stand-in generator (examples/standin, 1 slot), and
# `genworker dashboard` serving the API with three tokens (submit, read, admin).
#
#   scripts/api-stack.sh start        prints the variables the client tests read (also in .run/api-stack/env)
#   scripts/api-stack.sh restart-api  stops and starts the API process only (a test restarts it mid-wait)
#   scripts/api-stack.sh stop
#
# Environment: GENWORKER_BIN (default .build/debug/genworker), GENWORKER_BROKER_PORT (5679),
# GENWORKER_API_PORT (8099), GENWORKER_STACK_METRICS_PORT (9479), GENWORKER_STACK_DIR
# (.run/api-stack: several stacks side by side need their own directory and ports).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${GENWORKER_BIN:-$root/.build/debug/genworker}
port=${GENWORKER_API_PORT:-8099}
dir=${GENWORKER_STACK_DIR:-$root/.run/api-stack}
mkdir -p "$dir"

# Stops the process in FILE: SIGTERM, then SIGKILL after 15 s.
stop_pid() {
  local file=$1 pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

start_api() {
  "$bin" dashboard --config "$dir/genworker.yaml" >> "$dir/api.log" 2>&1 &
  echo $! > "$dir/api.pid"
  for _ in $(seq 200); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "api-stack: the API did not answer on port $port (log: $dir/api.log)" >&2
  tail -20 "$dir/api.log" >&2
  return 1
}

case ${1:-} in
start)
  [[ -x $bin ]] || { echo "api-stack: no $bin (swift build first, or set GENWORKER_BIN)" >&2; exit 1; }
  "$0" stop >/dev/null 2>&1 || true
  scripts/broker.sh start >/dev/null
  stack=api-stack-$$
  mkdir -p "$dir/outputs" "$dir/inputs" "$dir/checkpoints"
  token() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
  hash() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
  submit=$(token) read=$(token) admin=$(token) other=$(token)
  browser=$(token)
  browser_hash=$(printf %s "$browser" | "$bin" hash-password)
  cat > "$dir/genworker.yaml" <<YAML
amqp:
  url: $(scripts/broker.sh url)
worker:
  name: $stack-worker
  slots: 1
topology:
  jobs_exchange: $stack.jobs
  jobs_queue: $stack.jobs
  cancel_exchange: $stack.cancel
  cancel_stream: $stack.cancel.log
  events_exchange: $stack.events
  results_queue: $stack.results
  dead_exchange: $stack.dead
  dead_queue: $stack.dead
  unrouted_exchange: $stack.unrouted
  unrouted_queue: $stack.unrouted
  ledger_stream: $stack.ledger
wan:
  python: python3
  repo: $root/examples/standin
  checkpoints: $dir/checkpoints
inputs:
  roots: [$dir/inputs]
outputs:
  dir: $dir/outputs
supervisor:
  grace_s: 3
metrics:
  port: ${GENWORKER_STACK_METRICS_PORT:-9479}
dashboard:
  port: $port
  outputs_dir: $dir/outputs
  users:
    browser: "$browser_hash"
api:
  tokens:
    client: submit:$(hash "$submit")
    other-client: submit:$(hash "$other")
    reader: read:$(hash "$read")
    operator: admin:$(hash "$admin")
YAML
  : > "$dir/worker.log"
  : > "$dir/api.log"
  "$bin" run --config "$dir/genworker.yaml" > "$dir/worker.log" 2>&1 &
  echo $! > "$dir/worker.pid"
  for _ in $(seq 200); do grep -q "consuming" "$dir/worker.log" && break; sleep 0.1; done
  grep -q "consuming" "$dir/worker.log" || { echo "api-stack: the worker did not start (log: $dir/worker.log)" >&2; tail -20 "$dir/worker.log" >&2; exit 1; }
  start_api
  cat > "$dir/env" <<ENV
GENWORKER_API_URL=http://127.0.0.1:$port
GENWORKER_API_TOKEN=$submit
GENWORKER_API_TOKEN_OTHER=$other
GENWORKER_API_TOKEN_READ=$read
GENWORKER_API_TOKEN_ADMIN=$admin
GENWORKER_API_BROWSER_PASSWORD=$browser
GENWORKER_API_RESTART="GENWORKER_BIN=$bin GENWORKER_API_PORT=$port GENWORKER_STACK_DIR=$dir bash $root/scripts/api-stack.sh restart-api"
ENV
  cat "$dir/env"
  ;;
restart-api)
  stop_pid "$dir/api.pid"
  start_api
  ;;
stop)
  stop_pid "$dir/api.pid"
  stop_pid "$dir/worker.pid"
  ;;
*)
  echo "usage: scripts/api-stack.sh start|restart-api|stop" >&2
  exit 2
  ;;
esac
