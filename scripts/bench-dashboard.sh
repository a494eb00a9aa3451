#!/usr/bin/env bash
# The dashboard's figures (not a test; a few minutes): scripts/bench-dashboard.sh [rss|live|all]
# RSS with 100,000 jobs in the ledger window; with 1,000 running jobs, page load and first
# live update in headless Chromium, and the progress events per second the page keeps up with.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
scripts/build-release.sh >/dev/null
scripts/broker.sh start
BENCH_AMQP_URL=$(scripts/broker.sh url) python3 bench/dashboard_bench.py "${1:-all}"
