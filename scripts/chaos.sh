#!/usr/bin/env bash
# Fault injection against the real fleet, Jepsen style (bench/chaos.py), as root:
#   scripts/chaos.sh short [chaos.py options]   every fault class once, a few minutes (CI)
#   scripts/chaos.sh long  [chaos.py options]   about 32 minutes: four workers of 1-4 slots, 2400 jobs (3000+ with the faults' own)
# Installs what it needs (scripts/install-deps.sh; iptables, socat, iproute2 for the network
# partitions), starts the three-node cluster (scripts/cluster.sh; GENWORKER_CLUSTER_PORTS and
# GENWORKER_CLUSTER_DIR pick another one) and leaves it running. chaos.py builds
# .build/release/genworker when it is missing; --genworker PATH runs another build.
# Exit status: bench/history_check.py's (1 on any violation).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mode=${1:-short}
shift || true
case "$mode" in
  short) args=(--duration 240 --jobs 300 --workers 1,2,3,4 --rounds 1 --settle 240) ;;
  long) args=(--duration 2200 --jobs 2400 --workers 1,2,3,4 --settle 300) ;;
  *) echo "usage: scripts/chaos.sh short|long [bench/chaos.py options]" >&2; exit 2 ;;
esac
scripts/install-deps.sh --test
need=()
command -v iptables >/dev/null || need+=(iptables)
command -v socat >/dev/null || need+=(socat)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "chaos.sh: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
scripts/cluster.sh start
exec python3 bench/chaos.py "${args[@]}" "$@"
