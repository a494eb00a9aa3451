#!/usr/bin/env bash
# Proves the runtime image without a Docker engine: builds the runtime stage's root
# filesystem with debootstrap (Debian bookworm, minbase) plus docker/runtime-packages.txt
# (the list the Dockerfile installs), copies in the release build as the Dockerfile does,
# and runs `genworker run` inside it with chroot against the private broker until a job
# completes. Run by .ci/run. Needs root (chroot, mount).
#
#   scripts/runtime-rootfs.sh            (the root filesystem is kept in .run/rootfs and reused)
#   scripts/runtime-rootfs.sh --wan      the `wan` target too: docker/wan-packages.txt, the venv
#                                        of docker/wan-requirements.txt first on PATH (torch with
#                                        CUDA 12's libraries), the worker's generator run by that
#                                        venv's python3 (.run/rootfs-wan, ~8 GB; by hand, not CI)
# Not provable here (no route to github.com, no GPU): the FlashAttention wheel and the Wan2.2
# checkout the `wan` target fetches from GitHub, and CUDA itself (no driver: torch loads its
# CUDA libraries and reports no device). Run here (session 8): "wan venv: torch 2.6.0+cu124
# (CUDA 12.4, cuDNN 90100), 28 CUDA libraries loaded, device: False; diffusers 0.39.0,
# transformers 4.51.3, opencv 4.11.0", then a worker in the 7.3 GB root completed its job.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
wan=false
[ "${1:-}" = --wan ] && wan=true
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
packages=$(grep -v '^#' docker/runtime-packages.txt | paste -sd, -)
fs=$root/.run/rootfs
if $wan; then
  packages=$packages,$(grep -v '^#' docker/wan-packages.txt | paste -sd, -)
  fs=$root/.run/rootfs-wan
fi
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
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if $wan; then
  # As the `wan` target: a venv of the locked requirements, first on PATH.
  lock=$(sha256sum docker/wan-requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$fs/opt/wan-venv/.lock" 2>/dev/null)" != "$lock" ]; then
    cp /etc/resolv.conf "$fs/etc/resolv.conf"
    cp docker/wan-requirements.txt "$fs/tmp/wan-requirements.txt"
    echo "runtime-rootfs: the wan venv (pip install -r docker/wan-requirements.txt: torch and CUDA 12's wheels, a few GB)" >&2
    rm -rf "$fs/opt/wan-venv"
    chroot "$fs" /usr/bin/python3 -m venv /opt/wan-venv
    # This host's CAs (an egress proxy may sign PyPI's certificate): for the download only.
    cp /etc/ssl/certs/ca-certificates.crt "$fs/tmp/host-ca.crt"
    chroot "$fs" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root PIP_CERT=/tmp/host-ca.crt REQUESTS_CA_BUNDLE=/tmp/host-ca.crt \
      SSL_CERT_FILE=/tmp/host-ca.crt /opt/wan-venv/bin/pip install --no-cache-dir -q -r /tmp/wan-requirements.txt \
      >"$root/.run/rootfs-wan-pip.log" 2>&1 \
      || { tail -20 "$root/.run/rootfs-wan-pip.log" >&2; exit 1; }
    echo "$lock" > "$fs/opt/wan-venv/.lock"
  fi
  path=/opt/wan-venv/bin:$path
  # Wan2.2's imports, and torch's CUDA 12 libraries loaded against this root's glibc (torch
  # preloads cuBLAS, cuDNN, NCCL, ... at import; a mismatch fails here, not on a GPU box).
  chroot "$fs" /usr/bin/env PATH="$path" python3 -c '
import ctypes, glob, os
import torch, torchvision, torchaudio, cv2, diffusers, transformers, accelerate, einops, easydict, ftfy, imageio, scipy, dashscope
import nvidia
assert torch.version.cuda.startswith("12."), torch.version.cuda
libs = sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib", "lib*.so*")))
# Each library of the CUDA wheels, loaded for real; some need another first, so a few passes.
pending, failed = libs, []
for _ in libs:
    failed = []
    for lib in pending:
        try:
            ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
        except OSError as error:
            failed.append(f"{lib}: {error}")
    if not failed or len(failed) == len(pending):
        break
    pending = [f.split(": ")[0] for f in failed]
assert libs and not failed, failed or "no CUDA libraries"
print(f"runtime-rootfs: wan venv: torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), {len(libs)} CUDA libraries loaded, device: {torch.cuda.is_available()}; diffusers {diffusers.__version__}, transformers {transformers.__version__}, opencv {cv2.__version__}")
' >&2 || { echo "runtime-rootfs: the wan venv does not load" >&2; exit 1; }
  [ "$(chroot "$fs" /usr/bin/env PATH="$path" sh -c 'command -v python3; command -v torchrun')" = "/opt/wan-venv/bin/python3
/opt/wan-venv/bin/torchrun" ] || { echo "runtime-rootfs: python3 and torchrun are not the venv's" >&2; exit 1; }
fi
log=$root/.run/rootfs-worker.log
chroot "$fs" /usr/bin/env PATH="$path" /usr/local/bin/genworker run --config /etc/genworker/rootfs.yaml >"$log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do grep -q "consuming" "$log" && break; sleep 0.1; done
grep -q "consuming" "$log" || { cat "$log" >&2; echo "runtime-rootfs: the worker did not start in the root filesystem" >&2; exit 1; }
# The job goes in through the CLI of the same root filesystem; the worker inside runs it.
result=$(timeout 60 chroot "$fs" /usr/local/bin/genworker submit --config /etc/genworker/rootfs.yaml --task t2v-A14B --id "$prefix-job" \
  --param 'prompt=a fox in a chroot [[step_s=0.01]]' --param size=832*480 --param sample_steps=5 --wait | tail -1)
echo "$result" | grep -q '"status":"completed"' || { echo "$result"; cat "$log" >&2; echo "runtime-rootfs: no completed result" >&2; exit 1; }
[ -s "$fs/var/lib/genworker/outputs/$prefix-job.mp4" ] || { echo "runtime-rootfs: no video in the root filesystem" >&2; exit 1; }
echo "runtime-rootfs: a worker in the debootstrap root filesystem ($(du -shx "$fs" 2>/dev/null | cut -f1), packages: $packages) completed $prefix-job"
