#!/usr/bin/env bash
# For operators with a GPU and Wan2.2 (not run by CI): three ti2v-5B jobs cold, then three warm,
# printing each job's pipeline build and sampling time.
#   WAN_REPO=/opt/Wan2.2 WAN_CHECKPOINTS=/models [WAN_PYTHON=/venv/bin/python] scripts/gpu-check.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
: "${WAN_REPO:?set WAN_REPO to a Wan2.2 checkout}" "${WAN_CHECKPOINTS:?set WAN_CHECKPOINTS to the folder holding Wan2.2-TI2V-5B/}"
scripts/install-deps.sh --test
scripts/broker.sh start
scripts/build-release.sh >/dev/null
BENCH_AMQP_URL=$(scripts/broker.sh url) BENCH_GENWORKER=.build/dist/genworker python3 bench/gpu_check.py
