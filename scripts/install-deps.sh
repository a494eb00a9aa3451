#!/usr/bin/env bash
# Installs what genworker needs on a fresh Debian 12 machine (run as root); quiet when all is there.
#   scripts/install-deps.sh          what `make run` needs: build, broker, the stand-in generator
#   scripts/install-deps.sh --test   and what `make test` adds: browser, promtool, tsc, the tests' Python modules
# Python modules come from Debian's packages for Debian's own python3 (PEP 668: it refuses
# `pip install`), and from pip only for a python3 of its own (pyenv, a venv).
set -euo pipefail
test_tools=false
[ "${1:-}" = --test ] && test_tools=true
need=()
pkg-config --exists librabbitmq 2>/dev/null || need+=(librabbitmq-dev)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v ffmpeg >/dev/null || need+=(ffmpeg)            # the stand-in generator writes its videos with it
command -v openssl >/dev/null || need+=(openssl)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
modules=()
if $test_tools; then
  command -v amqp-publish >/dev/null || need+=(amqp-tools)
  command -v tmux >/dev/null || need+=(tmux)
  command -v promtool >/dev/null || need+=(prometheus)       # promtool checks the alert rules
  command -v chromium >/dev/null || need+=(chromium)          # the dashboard's browser tests (headless)
  command -v chromedriver >/dev/null || need+=(chromium-driver)
  command -v tsc >/dev/null || need+=(node-typescript)       # the TypeScript client (tsc 4.8; Node itself is not from here)
  python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)  # the API tests' own environment (.run/venv-api)
  modules=(pika jsonschema selenium boto3)
fi
# Debian's python3 takes its modules from apt; another python3 from pip.
system_python=false
if [ "$(command -v python3 || true)" = /usr/bin/python3 ] && compgen -G "/usr/lib/python3*/EXTERNALLY-MANAGED" >/dev/null; then system_python=true; fi
pip_modules=()
for module in "${modules[@]}"; do
  python3 -c "import $module" 2>/dev/null && continue
  if $system_python; then need+=("python3-$module"); else pip_modules+=("$module"); fi
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
for module in "${pip_modules[@]}"; do
  echo "install-deps: pip install $module ($(command -v python3) is not Debian's)" >&2
  python3 -m pip install -q --root-user-action=ignore "$module" 2>/dev/null || python3 -m pip install -q "$module"
done
