#!/usr/bin/env bash
# Benchmark (not a test): genworker and Celery 5 on the same private broker, alternating.
#   scripts/bench-celery.sh [ROUNDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh
python3 -c 'import celery' 2>/dev/null || python3 -m pip install -q "celery>=5.3,<6"
scripts/broker.sh start
scripts/build-release.sh >/dev/null
BENCH_AMQP_URL=$(scripts/broker.sh url) python3 bench/celery_vs_genworker.py "${1:-2}"
