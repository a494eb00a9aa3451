#!/usr/bin/env bash
# Installs what genworker needs on a fresh Debian machine (run as root); quiet when all is there.
set -euo pipefail
need=()
pkg-config --exists librabbitmq 2>/dev/null || need+=(librabbitmq-dev)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v amqp-publish >/dev/null || need+=(amqp-tools)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v openssl >/dev/null || need+=(openssl)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v tmux >/dev/null || need+=(tmux)
command -v curl >/dev/null || need+=(curl)
command -v promtool >/dev/null || need+=(prometheus)   # promtool checks the alert rules
command -v chromium >/dev/null || need+=(chromium)      # the dashboard's browser tests (headless)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v tsc >/dev/null || need+=(node-typescript)      # the TypeScript client (tsc 4.8; Node itself is not from here)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)  # the API tests' own environment (.run/venv-api)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
for module in pika jsonschema selenium boto3; do
  if ! python3 -c "import $module" 2>/dev/null; then
    echo "install-deps: pip install $module" >&2
    python3 -m pip install -q --root-user-action=ignore "$module" 2>/dev/null || python3 -m pip install -q "$module"
  fi
done
