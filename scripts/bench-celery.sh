#!/usr/bin/env bash
# Benchmark (not a test): genworker and Celery 5 on the same private broker, alternating.
#   scripts/bench-celery.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
python3 -c 'import celery' 2>/dev/null || python3 -m pip install -q "celery>=5.3,<6"
scripts/broker.sh start
scripts/build-release.sh >/dev/null
BENCH_AMQP_URL=$(scripts/broker.sh url) python3 bench/celery_vs_genworker.py "${1:-2}"
# A job longer than consumer_timeout, on a node of its own with a 15 s timeout.
long=(GENWORKER_BROKER_PORT=5709 GENWORKER_BROKER_EXTRA_CONF="consumer_timeout = 15000"
      GENWORKER_BROKER_ADVANCED="[{rabbit, [{channel_tick_interval, 1000}]}].")
env "${long[@]}" scripts/broker.sh start
trap 'env "${long[@]}" scripts/broker.sh stop' EXIT
BENCH_LONG_URL=$(env "${long[@]}" scripts/broker.sh url) python3 bench/long_job.py
