#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# scripts/demo.sh: the main job. Builds feedkit-sim, kis_collector and
# feedkit-report (Release, build/release), then replays the 2026-01-15 KIS
# incident for about a minute (examples/sim/scripts/incident.txt: an opening
# burst, a silent stall, a server close, a reconnect answered ALREADY IN
# SUBSCRIBE, malformed frames) against the KIS collector, whose status line
# you see every second, and prints the report: per symbol trades sent vs
# received, each outage with its cause, down time, time to detect and to
# recover, reconnects and drops. Exits with the report's code: 0 when nothing
# was lost while connected and every outage was reported by one gap line.
#
#   scripts/demo.sh                         # the incident, 60 s
#   scripts/demo.sh --script my.txt --duration 30
#   scripts/demo.sh --speed 4 --duration 15 # the same script 4x as fast
#   FEEDKIT_BUILD_DIR=build scripts/demo.sh --no-build   # prebuilt binaries
#
# Everything lands in out/demo/: sim.jsonl (what the sim sent, per
# connection), ticks.jsonl (the collector's output), collector.log, sim.log,
# report.txt and report.json. The benchmarks moved to scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

script=examples/sim/scripts/incident.txt
duration=58  # the collector's run; the incident script ends at 60
speed=1
symbols=005930,000660,035420
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --script) script="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --speed) speed="$2"; shift 2 ;;
    --symbols) symbols="$2"; shift 2 ;;
    --no-build) build=0; shift ;;  # use the binaries in $FEEDKIT_BUILD_DIR
    -h|--help) sed -n '4,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ -r "$script" ] || { echo "demo.sh: cannot read --script $script" >&2; exit 2; }

build_dir="${FEEDKIT_BUILD_DIR:-build/release}"
if [ "$build" -eq 1 ]; then
  scripts/install-deps.sh
  echo "== building feedkit-sim, kis_collector, feedkit-report (Release, $build_dir) =="
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DFEEDKIT_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build_dir" -j"$(nproc)" --target feedkit-sim kis_collector feedkit-report >/dev/null
fi
sim_bin="$build_dir/examples/sim/feedkit-sim"
collector_bin="$build_dir/examples/kis/kis_collector"
report_bin="$build_dir/examples/sim/feedkit-report"

out=out/demo
mkdir -p "$out"
rm -f "$out"/{sim.jsonl,sim.stdout,sim.log,ticks.jsonl,collector.log,report.txt,report.json}

sim_pid=""
collector_pid=""
cleanup() {
  [ -n "$collector_pid" ] && kill "$collector_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT

echo "== feedkit-sim (KIS) playing $script =="
sed -n 's/^\(at .*\)/  \1/p' "$script"
# The sim's own --duration is a safety net; it normally ends on the script's
# `end` or on the SIGTERM below.
"$sim_bin" --broker kis --symbols "$symbols" --rate 10 --book-rate 1 \
  --script "$script" --speed "$speed" --record "$out/sim.jsonl" \
  --duration "$(awk "BEGIN{print $duration + 30}")" \
  >"$out/sim.stdout" 2>"$out/sim.log" &
sim_pid=$!

for _ in $(seq 100); do
  grep -q '"event":"ready"' "$out/sim.stdout" 2>/dev/null && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$out/sim.log" >&2; exit 1; }
  sleep 0.1
done
ready=$(grep -m1 '"event":"ready"' "$out/sim.stdout") || {
  echo "demo.sh: feedkit-sim printed no ready line" >&2; exit 1; }
ws_url=$(sed 's/.*"ws_url":"\([^"]*\)".*/\1/' <<<"$ready")
rest_url=$(sed 's/.*"rest_url":"\([^"]*\)".*/\1/' <<<"$ready")
echo "  ws $ws_url, rest $rest_url"

echo "== kis_collector for ${duration}s (status every second) =="
# Tight but sane: a symbol is stale after 2.4 s of silence, and 3 s with no
# frame at all (the silent stall) means reconnect.
KIS_APPKEY=SIMAPPKEY KIS_APPSECRET=SIMSECRETKEY \
  "$collector_bin" --symbols "$symbols" --out "$out/ticks.jsonl" \
  --rest-url "$rest_url" --ws-url "$ws_url" \
  --expected-interval-ms 1000 --idle-timeout-ms 3000 \
  --duration "$duration" 2> >(tee "$out/collector.log" >&2) &
collector_pid=$!
collector_status=0
wait "$collector_pid" || collector_status=$?
collector_pid=""

kill -TERM "$sim_pid" 2>/dev/null || true
wait "$sim_pid" || true
sim_pid=""
sed 's/^/  /' "$out/sim.log"
if [ "$collector_status" -ne 0 ]; then
  echo "demo.sh: kis_collector exited $collector_status" >&2
fi

echo "== report =="
report_status=0
"$report_bin" --sim "$out/sim.jsonl" --collector "$out/ticks.jsonl" \
  --json "$out/report.json" | tee "$out/report.txt" || report_status=${PIPESTATUS[0]}
echo "(out/demo/: report.txt, report.json, sim.jsonl, ticks.jsonl, collector.log)"
[ "$collector_status" -eq 0 ] || exit 1
exit "$report_status"
