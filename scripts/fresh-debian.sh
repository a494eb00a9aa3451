#!/usr/bin/env bash
# The README's `make run` on a fresh Debian 12, proven without a VM: a debootstrap'ed bookworm
# root with its own system Python (PEP 668: it refuses `pip install`) and only what a new
# machine has plus the Swift toolchain's own needs; the toolchain (/opt/swift) and SwiftPM's
# package cache are bind-mounted; a clean clone of this repository runs `make run` inside
# with chroot, which must end with the worker and the dashboard answering. Not in CI (about
# 20 minutes: debootstrap, apt, a release build); run by hand as root.
#
#   scripts/fresh-debian.sh          (the root is kept in .run/fresh-debian; `rm -rf` it for a fresh one)
#
# The root shares this machine's network: its broker and dashboard ports must be free here
# (GENWORKER_BROKER_PORT, default 5689; GENWORKER_DEMO_PORT, default 8089). A broker of this
# machine on that port was what closed the demo's first submit with 541 INTERNAL_ERROR in an
# earlier run: the root's `broker.sh` took it for its own ("already running").
#
# Passed (session 8, at 61652e9 and again at 34f3dbb): install-deps.sh installed librabbitmq-dev, rabbitmq-server and ffmpeg
# and Debian's python3-* modules through apt (the PEP 668 marker present), the release build
# finished, the demo completed one job and cancelled the other while it ran, and the dashboard
# answered /v1/workers from outside the root; the root was 6.1 GB.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
for port in "${GENWORKER_BROKER_PORT:-5689}" "${GENWORKER_DEMO_PORT:-8089}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "fresh-debian: port $port is taken on this machine, whose network the root shares; set GENWORKER_BROKER_PORT / GENWORKER_DEMO_PORT" >&2
    exit 1
  fi
done
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fs=$root/.run/fresh-debian
# What the Swift toolchain needs to build (swift.org's Debian 12 list), and git, make, sudo-less root.
toolchain=binutils,git,make,gcc,libc6-dev,libcurl4-openssl-dev,libedit2,libgcc-12-dev,libpython3-dev,libsqlite3-0,libstdc++-12-dev,libxml2-dev,libncurses-dev,libz3-dev,pkg-config,tzdata,zlib1g-dev,ca-certificates,python3,procps,curl
if [ ! -f "$fs/.fresh-debian" ]; then
  rm -rf "$fs" && mkdir -p "$fs"
  echo "fresh-debian: debootstrap bookworm (+ the toolchain's needs)" >&2
  debootstrap --include="$toolchain" bookworm "$fs" http://deb.debian.org/debian >"$root/.run/fresh-debian.log" 2>&1 \
    || { tail -20 "$root/.run/fresh-debian.log" >&2; exit 1; }
  touch "$fs/.fresh-debian"
fi
mounts=(proc dev/pts dev sys opt/swift root/.swiftpm root/.cache/org.swift.swiftpm)
cleanup() {
  # Keep the root's broker log for a failed run: `make stop` would not remove it, but the next
  # run's clone does.
  rm -rf "$root/.run/fresh-debian-broker-log"
  cp -r "$fs"/src/.run/broker-*/log "$root/.run/fresh-debian-broker-log" 2>/dev/null || true
  chroot "$fs" /bin/sh -c 'cd /src && make stop' >/dev/null 2>&1 || true
  # Whatever still runs inside the root (an epmd, a node that outlived its stop) goes too.
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$fs" ] && kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
  for m in "${mounts[@]}"; do umount -l "$fs/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
mkdir -p "$fs/opt/swift" "$fs/root/.swiftpm" "$fs/root/.cache/org.swift.swiftpm"
mountpoint -q "$fs/proc" || mount -t proc proc "$fs/proc"
mountpoint -q "$fs/sys" || mount -t sysfs sys "$fs/sys"
mountpoint -q "$fs/dev" || mount --bind /dev "$fs/dev"
mountpoint -q "$fs/dev/pts" || mount --bind /dev/pts "$fs/dev/pts"
mountpoint -q "$fs/opt/swift" || mount --bind /opt/swift "$fs/opt/swift"
mountpoint -q "$fs/root/.swiftpm" || mount --bind /root/.swiftpm "$fs/root/.swiftpm"
# SwiftPM's package cache (~/.swiftpm/cache links to it): the machine's local copies of the packages.
mountpoint -q "$fs/root/.cache/org.swift.swiftpm" || mount --bind /root/.cache/org.swift.swiftpm "$fs/root/.cache/org.swift.swiftpm"
cp /etc/resolv.conf "$fs/etc/resolv.conf"
rm -rf "$fs/src" && git clone -q "$root" "$fs/src"
# The system Python of a fresh Debian refuses pip (PEP 668); the root must show it.
chroot "$fs" /bin/sh -c 'ls /usr/lib/python3*/EXTERNALLY-MANAGED' >/dev/null || { echo "fresh-debian: no PEP 668 marker: not a Debian 12 Python" >&2; exit 1; }
echo "fresh-debian: make run in the root (its python3: $(chroot "$fs" python3 --version))" >&2
chroot "$fs" /usr/bin/env -i HOME=/root PATH=/opt/swift/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
  GENWORKER_BROKER_PORT="${GENWORKER_BROKER_PORT:-5689}" GENWORKER_DEMO_PORT="${GENWORKER_DEMO_PORT:-8089}" \
  /bin/sh -c 'cd /src && make run' 2>&1 | tee "$root/.run/fresh-debian-make-run.log" | tail -15
grep -q '"status":"completed"\|completed' "$root/.run/fresh-debian-make-run.log" || { echo "fresh-debian: no completed job" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${GENWORKER_DEMO_PORT:-8089}/v1/workers")
[ "$code" = 200 ] || { echo "fresh-debian: the dashboard did not answer ($code)" >&2; exit 1; }
echo "fresh-debian: make run on a debootstrap'ed Debian 12 ($(du -shx "$fs" 2>/dev/null | cut -f1)): the demo's jobs ran, the dashboard answers"
