#!/usr/bin/env bash
# Chaos soak (not a test; minutes): scripts/soak.sh [JOBS]   (default 2000)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/broker.sh start
scripts/build-release.sh >/dev/null
SOAK_AMQP_URL=$(scripts/broker.sh url) python3 bench/soak.py "${1:-2000}"
