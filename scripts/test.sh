#!/usr/bin/env bash
# Builds and runs every feedkit test through ctest:
#   1. the whole suite (unit tests, consumer tests, benchmark smoke runs)
#      under AddressSanitizer + UndefinedBehaviorSanitizer;
#   2. the concurrency stress tests (*_stress_test.cc) under ThreadSanitizer.
# Installs missing Debian packages first. Build trees go under build/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)
echo "== ASan + UBSan: all tests =="
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" >/dev/null
cmake --build build/asan -j"$jobs"
ctest --test-dir build/asan --output-on-failure -j"$jobs"

echo "== TSan: concurrency stress tests =="
cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFEEDKIT_STRESS_TESTS_ONLY=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -Wno-tsan" >/dev/null
cmake --build build/tsan -j"$jobs"
ctest --test-dir build/tsan --output-on-failure -L stress
