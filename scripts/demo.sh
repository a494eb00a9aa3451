#!/usr/bin/env bash
# `make run`: the private broker, then a short AMQP round trip through the Swift layer.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/broker.sh start
echo "RabbitMQ is up: $(scripts/broker.sh url)"
