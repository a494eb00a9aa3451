#!/usr/bin/env bash
# Every test: unit tests and the integration tests against a private RabbitMQ and real child processes.
# Broker tests never skip: without a broker they fail.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh
scripts/broker.sh start
export GENWORKER_BROKER_PORT=${GENWORKER_BROKER_PORT:-5679}
swift build --build-tests
swift test --skip-build --disable-swift-testing "$@"
