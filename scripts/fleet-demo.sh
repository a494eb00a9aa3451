#!/usr/bin/env bash
# `make fleet`: a three-node RabbitMQ cluster (scripts/cluster.sh), three workers on the
# stand-in generator, each first connected to a different node (amqp.urls in a different
# order), six jobs, and node 2 restarted while they run. Prints every event as it comes.
# What it shows: a worker whose node goes away reconnects through another node while its
# jobs keep running (each starts once), and every job ends with one result. Then
# `genworker workers` and `genworker jobs` from the ledger.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
scripts/cluster.sh start
scripts/build-release.sh >/dev/null
bin=.build/dist/genworker
demo=$root/.run/fleet
mkdir -p "$demo/outputs" "$demo/checkpoints"
IFS=, read -r -a urls <<< "$(scripts/cluster.sh urls)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/cluster.sh stop
}
trap cleanup EXIT
for i in 1 2 3; do
  # Worker i tries node i first, then the others.
  order=("${urls[@]:$((i - 1))}" "${urls[@]:0:$((i - 1))}")
  cat > "$demo/worker-$i.yaml" <<YAML
amqp:
  urls: [$(IFS=,; echo "${order[*]}")]
  reconnect_max_s: 2
worker:
  name: fleet-$i
  lock_dir: $demo
wan:
  repo: $root/examples/standin
  checkpoints: $demo/checkpoints
outputs:
  dir: $demo/outputs
supervisor:
  grace_s: 5
metrics:
  address: 127.0.0.1
  port: $((9470 + i))
YAML
  "$bin" run --config "$demo/worker-$i.yaml" > "$demo/worker-$i.log" 2>&1 &
  pids+=($!)
done
sleep 2
"$bin" watch --url "${urls[0]}" > "$demo/events.jsonl" &
pids+=($!)
sleep 1  # the watcher's queue is bound before the first job
run=$(date +%s)
for j in 1 2 3 4 5 6; do
  "$bin" submit --url "${urls[0]}" --task t2v-A14B --id "fleet-$run-$j" \
    --param "prompt=a fleet job [[step_s=0.2]]" --param size=832*480 --param sample_steps=30 > /dev/null
done
echo "== six jobs submitted; restarting node 2 in 2 s"
sleep 2
scripts/cluster.sh restart-node 2
echo "== node 2 is back; waiting for six results"
for _ in $(seq 1 120); do
  [ "$(grep -cE '"event":"(completed|failed|cancelled)"' "$demo/events.jsonl" || true)" -ge 6 ] && break
  sleep 1
done
python3 - "$demo/events.jsonl" <<'PY'
import json, sys, collections
starts, ends = collections.Counter(), {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "started": starts[e["id"]] += 1
    if e["event"] in ("completed", "failed", "cancelled"): ends[e["id"]] = (e["event"], e["worker"])
for job in sorted(set(starts) | set(ends)):
    print("%-24s started %d time(s), ended %s on %s" % (job, starts[job], *ends.get(job, ("-", "-"))))
PY
echo "== genworker workers"; "$bin" workers --url "${urls[0]}" --config "$demo/worker-1.yaml"
echo "== genworker jobs"; "$bin" jobs --url "${urls[0]}" --config "$demo/worker-1.yaml"
for i in 1 2 3; do echo "== worker fleet-$i"; grep -E "connected to|connection ended|reconnecting|consuming" "$demo/worker-$i.log" || true; done
