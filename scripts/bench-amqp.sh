#!/usr/bin/env bash
# Benchmark (not a test): the Swift AMQP layer and pika on the same private broker, in one run, alternating.
#   scripts/bench-amqp.sh [MESSAGES] [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
count=${1:-5000}
rounds=${2:-3}
scripts/install-deps.sh --test
scripts/broker.sh start
swift build -c release --product amqp-bench >/dev/null
url=$(scripts/broker.sh url)
for round in $(seq 1 "$rounds"); do
  echo "round $round" >&2
  .build/release/amqp-bench "$url" "$count"
  python3 bench/amqp_bench.py "${url}%2f" "$count"
done
