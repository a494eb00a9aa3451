#!/usr/bin/env bash
# Chaos soak (not a test; minutes):
#   scripts/soak.sh [JOBS]             two workers, one private broker (bench/soak.py; default 2000)
#   scripts/soak.sh --cluster [JOBS]   four workers, the three-node cluster (bench/soak_cluster.py):
#                                      a rolling restart of every node, a worker SIGKILLed, one SIGSTOPped past its lease
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
scripts/build-release.sh >/dev/null
if [ "${1:-}" = "--cluster" ]; then
  scripts/cluster.sh start
  python3 bench/soak_cluster.py "${2:-2000}"
  exit
fi
scripts/broker.sh start
SOAK_AMQP_URL=$(scripts/broker.sh url) python3 bench/soak.py "${1:-2000}"
