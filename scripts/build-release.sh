#!/usr/bin/env bash
# The release build, used by `make build`, the Dockerfile and CI alike:
# static Swift runtime, so the runtime image needs only librabbitmq.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --static-swift-stdlib --product genworker
swift build -c release --static-swift-stdlib --product genworker-watchdog
out=${1:-.build/dist}
mkdir -p "$out"
cp "$(swift build -c release --show-bin-path)/genworker" "$(swift build -c release --show-bin-path)/genworker-watchdog" "$out/"
echo "build-release: $out/genworker, $out/genworker-watchdog" >&2
