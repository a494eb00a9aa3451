#!/usr/bin/env bash
# Benchmark (not a test): cold and warm generators side by side on the stand-in.
#   scripts/bench-warm.sh [JOBS=20] [BUILD_S=30] [SAMPLE_S=60]      (about 50 min with the defaults)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
scripts/broker.sh start
scripts/build-release.sh >/dev/null
BENCH_AMQP_URL=$(scripts/broker.sh url) BENCH_GENWORKER=.build/dist/genworker python3 bench/warm_vs_cold.py "${1:-20}" "${2:-30}" "${3:-60}"
