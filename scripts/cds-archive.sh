#!/usr/bin/env bash
# Builds a class-data archive (AppCDS, JDK 13+) for the packaged server: starts the jar once with
# -XX:ArchiveClassesAtExit, sends it a few API calls so the classes of the publish path are
# loaded, stops it with SIGTERM, and leaves the archive beside the jar. Start the server with
#   java -XX:SharedArchiveFile=app/target/scopecast.jsa -jar app/target/scopecast.jar
# to map those classes instead of loading them (docs/benchmarks.md measures what it gives).
# The archive belongs to this jar and this JDK: rebuild it after either changes.
set -euo pipefail
cd "$(dirname "$0")/.."
JAR="${JAR:-app/target/scopecast.jar}"
ARCHIVE="${ARCHIVE:-${JAR%.jar}.jsa}"
PORT="${PORT:-18089}"
[ -f "$JAR" ] || { echo "cds-archive: $JAR is missing: run mvn -q -B package -DskipTests -DskipITs first" >&2; exit 1; }
LOG="$(mktemp)"
KEY="cds-$RANDOM$RANDOM"
SCOPECAST_HOST=127.0.0.1 SCOPECAST_PORT="$PORT" SCOPECAST_CLUSTER_PORT="$((PORT + 1))" SCOPECAST_API_KEY="$KEY" \
  java -XX:ArchiveClassesAtExit="$ARCHIVE" -jar "$JAR" > "$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 120); do
  grep -q "Scopecast listening" "$LOG" && break
  kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
  sleep 0.5
done
grep -q "Scopecast listening" "$LOG" || { echo "cds-archive: the server did not start" >&2; exit 1; }
for i in $(seq 1 200); do
  curl -s -o /dev/null -H "Authorization: Bearer $KEY" \
    -d "{\"scope\":\"workspace:cds\",\"event\":\"warm\",\"payload\":{\"i\":$i}}" "http://127.0.0.1:$PORT/api/publish"
done
curl -s -o /dev/null -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/api/history/workspace:cds"
curl -s -o /dev/null "http://127.0.0.1:$PORT/health/realtime"
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT
rm -f "$LOG"
[ -f "$ARCHIVE" ] || { echo "cds-archive: no archive was written" >&2; exit 1; }
echo "class-data archive: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
