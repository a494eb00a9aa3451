#!/usr/bin/env bash
# The ledger's benchmarks (not a test; ~15 min): scripts/bench-fleet.sh [OLD_COMMIT]
# Builds this tree and OLD_COMMIT (default b2b4f31, main before the ledger) in release mode,
# starts the private broker and the three-node cluster, and runs bench/fleet_bench.py:
# node-restart loss (old, new, Celery 5.7), per-job cost (old vs new), cancel -> SIGTERM with
# 8 and 64 workers following the ledger, time to ready with 100,000 ledger records.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
old=${1:-b2b4f31}
scripts/install-deps.sh --test
python3 -c 'import celery' 2>/dev/null || pip install -q 'celery==5.*'
scripts/build-release.sh >/dev/null
tree=.run/old-$old
if [ ! -x "$tree/.build/dist/genworker" ]; then
  rm -rf "$tree" && git worktree prune
  git worktree add -f "$tree" "$old" >/dev/null
  (cd "$tree" && scripts/build-release.sh >/dev/null)
fi
export BENCH_OLD_GENWORKER=$root/$tree/.build/dist/genworker
scripts/broker.sh start
scripts/cluster.sh start
export BENCH_AMQP_URL=$(scripts/broker.sh url)
echo "== node restart, 3 jobs of 30 s in flight (old, new, celery)"; python3 bench/fleet_bench.py restart 3 30
echo "== per-job cost"; python3 bench/fleet_bench.py cost
echo "== cancel -> SIGTERM with 8 and 64 workers"; python3 bench/fleet_bench.py cancel 8 64
echo "== time to ready, 100,000 ledger records"; python3 bench/fleet_bench.py ready 100000
