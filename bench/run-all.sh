#!/usr/bin/env bash
# Reproduces every figure of docs/benchmarks.md on this machine (about 20 minutes on 2 cores):
# runs each workload with the server pinned to CPU 0 and the generator to CPU 1, appends one JSON
# line per run to bench/results/, then redraws the chart and rewrites the tables in the doc.
# fanout@50, saturate, rooms and idle also run on Socket.IO and bare ws (bench/servers/), each in
# turn in the same invocation (--targets), for the comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f app/target/scopecast.jar ] || [ ! -f bench/target/scopecast-bench.jar ]; then
  mvn -q -B package -DskipTests -DskipITs
fi
command -v redis-server >/dev/null || ./scripts/setup.sh
bench/servers/install.sh
ulimit -n 120000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

OUT="bench/results/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
PIN="--server-cpus 0 --client-cpus 1"
bench() { java -jar bench/target/scopecast-bench.jar "$@" $PIN --out "$OUT"; }

bench fanout
bench fanout --redis --label fanout+redis
VS="--targets scopecast,socketio,ws"
bench fanout --rate 50 --subscribers 1000 --events 1000 $VS --label fanout@50
bench saturate $VS
bench saturate --redis --label saturate+redis
bench rooms $VS
bench idle $VS
if [ "$(ulimit -n)" -ge 110000 ]; then bench idle --connections 50000 $VS --label idle-50k; fi
bench resume-storm
bench cluster
bench cluster --redis --label cluster+redis
bench sweep --rates 25,50,100,200,400 --events 1000 --warmup 200
bench sweep --rates 25,50,100,200,400 --events 1000 --warmup 200 --redis

java -jar bench/target/scopecast-bench.jar chart --in "$OUT" --png docs/benchmarks-latency.png
java -jar bench/target/scopecast-bench.jar report --in "$OUT" --doc docs/benchmarks.md
java -jar bench/target/scopecast-bench.jar report --in "$OUT" --doc docs/benchmarks.md --section comparison
cp "$OUT" bench/results/latest.jsonl
echo "figures in $OUT; docs/benchmarks.md (both tables) and docs/benchmarks-latency.png updated"
