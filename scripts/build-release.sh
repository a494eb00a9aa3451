#!/usr/bin/env bash
# The release build, used by `make build`, the Dockerfile and CI alike:
# static Swift runtime, so the runtime image needs only librabbitmq.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift build -c release --static-swift-stdlib --product genworker
out=${1:-.build/dist}
mkdir -p "$out"
cp "$(swift build -c release --show-bin-path)/genworker" "$out/"
cp runner/warm_runner.py "$out/"  # wan.warm's runner, found next to the executable
# The watchdog idles beside every worker: built by the C compiler alone, static, it holds
# about 0.7 MiB instead of the 3.9 MiB of SwiftPM's link (which adds the C++ and Swift
# runtimes it never calls). SwiftPM still builds it for the tests (same source).
"$(command -v cc || command -v clang)" -O2 -static -o "$out/genworker-watchdog" Sources/genworker-watchdog/main.c
echo "build-release: $out/genworker, $out/genworker-watchdog, $out/warm_runner.py" >&2
