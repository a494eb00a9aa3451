#!/usr/bin/env bash
# Proves the runtime image without a Docker engine: builds the runtime stage's root
# filesystem with debootstrap (Debian bookworm, minbase) plus docker/runtime-packages.txt
# (the list the Dockerfile installs), copies in the release build as the Dockerfile does,
# and runs `genworker run` inside it with chroot against the private broker until a job
# completes. Run by .ci/run. Needs root (chroot, mount).
#
#   scripts/runtime-rootfs.sh            (the root filesystem is kept in .run/rootfs and reused)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
packages=$(grep -v '^#' docker/runtime-packages.txt | paste -sd, -)
fs=$root/.run/rootfs
stamp=$fs/.genworker-packages
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$packages" ]; then
  rm -rf "$fs"
  mkdir -p "$fs"
  echo "runtime-rootfs: debootstrap bookworm + $packages" >&2
  debootstrap --variant=minbase --include="$packages" bookworm "$fs" http://deb.debian.org/debian >"$root/.run/debootstrap.log" 2>&1 \
    || { tail -20 "$root/.run/debootstrap.log" >&2; exit 1; }
  echo "$packages" > "$stamp"
fi
scripts/build-release.sh >/dev/null
scripts/broker.sh start >/dev/null
# As the Dockerfile's runtime stage: binaries in /usr/local/bin, config in /etc/genworker, the stand-in.
install -m 755 .build/dist/genworker .build/dist/genworker-watchdog .build/dist/warm_runner.py "$fs/usr/local/bin/"
rm -rf "$fs/etc/genworker" "$fs/opt/genworker-standin" && mkdir -p "$fs/etc/genworker" "$fs/var/lib/genworker/outputs" "$fs/run/lock"
cp -r config/. "$fs/etc/genworker/"
cp -r examples/standin "$fs/opt/genworker-standin"
prefix=rootfs-$(date +%s)
url=$(scripts/broker.sh url)
cat > "$fs/etc/genworker/rootfs.yaml" <<YAML
amqp:
  url: $url
worker:
  name: $prefix
topology:
  jobs_exchange: $prefix.jobs
  jobs_queue: $prefix.jobs
  cancel_exchange: $prefix.cancel
  cancel_stream: $prefix.cancel.log
  events_exchange: $prefix.events
  results_queue: $prefix.results
  ledger_stream: $prefix.ledger
wan:
  python: python3
  repo: /opt/genworker-standin
  checkpoints: /tmp
outputs:
  dir: /var/lib/genworker/outputs
metrics:
  port: 0
YAML
mountpoint -q "$fs/proc" || mount -t proc proc "$fs/proc"
mountpoint -q "$fs/dev" || mount --bind /dev "$fs/dev"
cleanup() {
  [ -n "${worker:-}" ] && kill -TERM "$worker" 2>/dev/null && wait "$worker" 2>/dev/null || true
  umount "$fs/proc" 2>/dev/null || true
  umount "$fs/dev" 2>/dev/null || true
}
trap cleanup EXIT
log=$root/.run/rootfs-worker.log
chroot "$fs" /usr/local/bin/genworker run --config /etc/genworker/rootfs.yaml >"$log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do grep -q "consuming" "$log" && break; sleep 0.1; done
grep -q "consuming" "$log" || { cat "$log" >&2; echo "runtime-rootfs: the worker did not start in the root filesystem" >&2; exit 1; }
# The job goes in through the CLI of the same root filesystem; the worker inside runs it.
result=$(timeout 60 chroot "$fs" /usr/local/bin/genworker submit --config /etc/genworker/rootfs.yaml --task t2v-A14B --id "$prefix-job" \
  --param 'prompt=a fox in a chroot [[step_s=0.01]]' --param size=832*480 --param sample_steps=5 --wait | tail -1)
echo "$result" | grep -q '"status":"completed"' || { echo "$result"; cat "$log" >&2; echo "runtime-rootfs: no completed result" >&2; exit 1; }
[ -s "$fs/var/lib/genworker/outputs/$prefix-job.mp4" ] || { echo "runtime-rootfs: no video in the root filesystem" >&2; exit 1; }
echo "runtime-rootfs: a worker in the debootstrap root filesystem ($(du -shx "$fs" 2>/dev/null | cut -f1), packages: $packages) completed $prefix-job"
