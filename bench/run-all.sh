#!/usr/bin/env bash
# Reproduces every figure of docs/benchmarks.md on this machine (about 15 minutes on 2 cores):
# runs each workload with the server pinned to CPU 0 and the generator to CPU 1, appends one JSON
# line per run to bench/results/, then redraws the chart and rewrites the table in the doc.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f app/target/scopecast.jar ] || [ ! -f bench/target/scopecast-bench.jar ]; then
  mvn -q -B package -DskipTests -DskipITs
fi
command -v redis-server >/dev/null || ./scripts/setup.sh
ulimit -n 120000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

OUT="bench/results/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
PIN="--server-cpus 0 --client-cpus 1"
bench() { java -jar bench/target/scopecast-bench.jar "$@" $PIN --out "$OUT"; }

bench fanout
bench fanout --redis --label fanout+redis
bench fanout --rate 50 --events 1000 --label fanout@50
bench saturate
bench saturate --redis --label saturate+redis
bench rooms
bench idle
if [ "$(ulimit -n)" -ge 110000 ]; then bench idle --connections 50000 --label idle-50k; fi
bench resume-storm
bench cluster
bench cluster --redis --label cluster+redis
bench sweep --rates 25,50,100,200,400 --events 1000 --warmup 200
bench sweep --rates 25,50,100,200,400 --events 1000 --warmup 200 --redis

java -jar bench/target/scopecast-bench.jar chart --in "$OUT" --png docs/benchmarks-latency.png
java -jar bench/target/scopecast-bench.jar report --in "$OUT" --doc docs/benchmarks.md
cp "$OUT" bench/results/latest.jsonl
echo "figures in $OUT; docs/benchmarks.md and docs/benchmarks-latency.png updated"
