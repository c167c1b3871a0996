#!/usr/bin/env bash
# Installs the Debian 12 packages feedkit's build, tests, benchmarks and demo
# need, and nothing that is already there. Safe to run any number of times.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libabsl-dev libconcurrentqueue-dev   # core
  libboost-dev libssl-dev openssl      # WebSocket client (Beast, TLS); test certificates
  libgtest-dev libgmock-dev            # tests
  libbenchmark-dev gnuplot-nox         # benchmarks, queue-sizing plots
  libpaho-mqtt-dev libpaho-mqttpp-dev  # MQTT client (Paho C and C++)
  mosquitto                            # MQTT tests and the Settrade simulator
  libprotobuf-dev protobuf-compiler    # Settrade codec
  prometheus-cpp-dev prometheus        # metrics bridge; promtool tests the alert rules
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
