#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/sizing.sh: the queue-sizing harness in one command. Builds the
# Release tree and replays the market-open profile through the real Dispatcher
# for a range of capacities (about 35 s); prints the smallest capacity with
# zero drops beside the rule peak_rate x max_pause x safety, and writes
# out/sizing/{sizing.csv,depth.csv,sizing.gp,sizing.png}. Run it on a quiet
# machine: rows marked '*' lagged their schedule. Arguments go to the harness
# (later flags win):
#
#   scripts/sizing.sh                              # the defaults
#   scripts/sizing.sh --pause-ms 500 --safety 2    # a longer stall
#   scripts/sizing.sh --profile csv:arrivals.csv   # replay recorded arrivals
#   scripts/sizing.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${FEEDKIT_BUILD_DIR:-build/release}"
scripts/install-deps.sh
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFEEDKIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" --target queue_sizing -j"$(nproc)"
exec "$build_dir/bench/queue_sizing" --profile market_open "$@"
