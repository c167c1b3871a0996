#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/bench.sh: the dispatcher benchmark (feedkit against raw moodycamel
# and a mutex+deque queue, ratios at the end) and the queue-sizing harness
# (recommendation, CSVs and plot under out/sizing/). Installs missing Debian
# packages and builds a Release tree under build/release first. Extra
# arguments go to the harness (scripts/bench.sh --profile steady --rate 50000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DFEEDKIT_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j"$(nproc)" --target dispatcher_bench queue_sizing
echo "== Dispatcher hand-off benchmark =="
build/release/bench/dispatcher_bench
echo "== Queue sizing =="
scripts/sizing.sh "$@"
