#!/usr/bin/env bash
# The toolchain's swift-format in lint mode with the checked-in .swift-format, and the layers of
# docs/architecture.md (scripts/check-layers.py); fails on any finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
swift format lint --strict --parallel --recursive Package.swift Sources Tests
python3 scripts/check-layers.py
echo "lint: clean" >&2
