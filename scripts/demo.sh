#!/usr/bin/env bash
# `make run`: a private RabbitMQ, a worker running the stand-in generator
# (examples/standin/generate.py: Wan2.2's command line, no GPU), one job that
# completes and one that is cancelled while it runs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/broker.sh start
scripts/build-release.sh >/dev/null
bin=.build/dist/genworker
demo=$root/.run/demo
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
YAML
"$bin" run --config "$demo/genworker.yaml" > "$demo/worker.log" 2>&1 &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null || true' EXIT
sleep 1

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
