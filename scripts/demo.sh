#!/usr/bin/env bash
# `make run`: a private RabbitMQ, a worker running the stand-in generator
# (examples/standin/generate.py: Wan2.2's command line, no GPU) and the dashboard with the
# HTTP API; one job that completes and one that is cancelled while it runs; then the worker
# and the dashboard keep running for you to try (`make stop` ends them).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=$root/.build/dist/genworker
demo=$root/.run/demo
port=${GENWORKER_DEMO_PORT:-8080}
# `scripts/demo.sh stop` (`make stop`): the demo's worker and dashboard, then the broker.
if [ "${1:-}" = stop ]; then
  for name in dashboard worker; do
    [ -f "$demo/$name.pid" ] || continue
    pid=$(cat "$demo/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$demo/$name.pid"
  done
  [ "${2:-}" = --keep-broker ] || scripts/broker.sh stop
  exit 0
fi
"$0" stop --keep-broker >/dev/null 2>&1 || true
scripts/broker.sh start
scripts/build-release.sh >/dev/null
mkdir -p "$demo/inputs" "$demo/outputs" "$demo/checkpoints"
cat > "$demo/genworker.yaml" <<YAML
amqp:
  url: $(scripts/broker.sh url)
worker:
  name: demo-worker
wan:
  python: python3
  repo: $root/examples/standin
  checkpoints: $demo/checkpoints
inputs:
  roots: [$demo/inputs]
outputs:
  dir: $demo/outputs
supervisor:
  grace_s: 5
dashboard:
  port: $port
  outputs_dir: $demo/outputs
YAML
"$bin" run --config "$demo/genworker.yaml" > "$demo/worker.log" 2>&1 &
echo $! > "$demo/worker.pid"
# The dashboard and the HTTP API (dashboard.port): they stay up with the worker after the demo.
"$bin" dashboard --config "$demo/genworker.yaml" > "$demo/dashboard.log" 2>&1 &
echo $! > "$demo/dashboard.pid"
for _ in $(seq 100); do grep -q "consuming" "$demo/worker.log" && break; sleep 0.1; done

# Job ids must be unique: a cancelled id stays cancelled for 24 h (cancel.retention).
run=$(date +%s)
echo "== a job that completes (events as they arrive)"
"$bin" submit --config "$demo/genworker.yaml" --task t2v-A14B --id "demo-fox-$run" \
  --param 'prompt=A red fox running through snow [[step_s=0.05]]' --param size=832*480 --param sample_steps=20 --wait
ls -l "$demo/outputs/demo-fox-$run.mp4"

echo "== a job cancelled while it runs"
"$bin" submit --config "$demo/genworker.yaml" --task t2v-A14B --id "demo-long-$run" \
  --param 'prompt=A very long scene [[step_s=0.5]]' --param size=832*480 >/dev/null
"$bin" watch --config "$demo/genworker.yaml" "demo-long-$run" &
watcher=$!
sleep 2
"$bin" cancel --config "$demo/genworker.yaml" "demo-long-$run"
wait $watcher || true
echo "== worker log"
cat "$demo/worker.log"
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
cat <<TEXT

The worker and the dashboard keep running (the private broker too):
  dashboard     http://127.0.0.1:$port/            (jobs, workers, queues; the API under /v1)
  submit        $bin submit --config $demo/genworker.yaml --task t2v-A14B --param 'prompt=A red fox [[step_s=0.2]]' --wait
  follow        $bin watch --config $demo/genworker.yaml JOB_ID
  cancel        $bin cancel --config $demo/genworker.yaml JOB_ID
  over HTTP     curl -N http://127.0.0.1:$port/v1/jobs/JOB_ID/events
  stop all      make stop
TEXT
