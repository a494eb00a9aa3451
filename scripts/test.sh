#!/usr/bin/env bash
# Every test: unit tests and the integration tests against a private RabbitMQ, a private S3
# server (SeaweedFS) and real child processes. Broker and S3 tests never skip: without them they fail.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test
scripts/broker.sh start
scripts/s3.sh start
export GENWORKER_BROKER_PORT=${GENWORKER_BROKER_PORT:-5679}
export GENWORKER_S3_PORT=${GENWORKER_S3_PORT:-8533}
swift build --build-tests
swift test --skip-build --disable-swift-testing "$@"
# The HTTP API against its OpenAPI document (schemathesis) and the Python and TypeScript
# clients' suites, against a real broker, worker and API (not when a filter picks tests).
if [ $# -eq 0 ]; then scripts/test-clients.sh; fi
