#!/usr/bin/env bash
# A Scopecast cluster of N nodes on this machine (loopback), for trying clustering and for tests.
#
#   deploy/local/cluster.sh start [N]     start N nodes (default 3) and wait until all are ready members
#   deploy/local/cluster.sh stop          SIGTERM every node and wait for them to exit
#   deploy/local/cluster.sh status        one line per node: id, pid, state, http and cluster ports
#   deploy/local/cluster.sh kill I        kill -9 node I (a crash)
#   deploy/local/cluster.sh restart I     SIGTERM node I (if running), start it again, wait until ready
#   deploy/local/cluster.sh rolling       restart every node in turn (a rolling deploy)
#   deploy/local/cluster.sh url I         the HTTP base URL of node I
#
# Environment: SCOPECAST_JAR (default app/target/scopecast.jar), SCOPECAST_RUN_DIR (pids, logs, ports;
# default target/local-cluster), HTTP_PORTS / CLUSTER_PORTS (comma-separated, one per node) or
# BASE_HTTP_PORT (8081) / BASE_CLUSTER_PORT (25521), JAVA_OPTS (-Xmx512m), READY_TIMEOUT (90 s).
# All nodes share SCOPECAST_JWT_SECRET and SCOPECAST_API_KEY; when unset they are generated once
# and kept in the run directory (printed by `start`).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
JAR="${SCOPECAST_JAR:-$ROOT/app/target/scopecast.jar}"
RUN="${SCOPECAST_RUN_DIR:-$ROOT/target/local-cluster}"
JAVA_OPTS="${JAVA_OPTS:--Xmx512m}"
READY_TIMEOUT="${READY_TIMEOUT:-90}"
mkdir -p "$RUN"

die() { echo "cluster.sh: $*" >&2; exit 1; }

count() { cat "$RUN/count" 2>/dev/null || echo 0; }

port_of() { # port_of http|cluster I
  local list base
  if [ "$1" = http ]; then list="${HTTP_PORTS:-}"; base="${BASE_HTTP_PORT:-8081}"; else list="${CLUSTER_PORTS:-}"; base="${BASE_CLUSTER_PORT:-25521}"; fi
  if [ -f "$RUN/$1-ports" ]; then list="$(cat "$RUN/$1-ports")"; fi
  if [ -n "$list" ]; then echo "$list" | cut -d, -f"$2"; else echo $((base + $2 - 1)); fi
}

credentials() {
  if [ ! -f "$RUN/credentials" ]; then
    local secret="${SCOPECAST_JWT_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')}"
    local key="${SCOPECAST_API_KEY:-$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')}"
    printf 'SCOPECAST_JWT_SECRET=%s\nSCOPECAST_API_KEY=%s\n' "$secret" "$key" > "$RUN/credentials"
  fi
  # shellcheck disable=SC1091
  . "$RUN/credentials"
  export SCOPECAST_JWT_SECRET SCOPECAST_API_KEY
}

seeds() {
  local n; n="$(count)"; local out=""
  for i in $(seq 1 "$n"); do out="${out:+$out,}127.0.0.1:$(port_of cluster "$i")"; done
  echo "$out"
}

pid_of() { cat "$RUN/node-$1.pid" 2>/dev/null || true; }

alive() { local p; p="$(pid_of "$1")"; [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_node() {
  local i="$1"
  alive "$i" && die "node $i is already running (pid $(pid_of "$i"))"
  credentials
  (
    export SCOPECAST_HOST=127.0.0.1 SCOPECAST_PORT="$(port_of http "$i")"
    export SCOPECAST_CLUSTER_HOST=127.0.0.1 SCOPECAST_CLUSTER_PORT="$(port_of cluster "$i")"
    export SCOPECAST_SEED_NODES="$(seeds)" SCOPECAST_NODE_ID="node-$i"
    # shellcheck disable=SC2086
    exec java $JAVA_OPTS -jar "$JAR" >> "$RUN/node-$i.log" 2>&1
  ) &
  echo $! > "$RUN/node-$i.pid"
}

wait_ready() { # wait_ready I MEMBERS
  local i="$1" members="$2" url deadline
  url="http://127.0.0.1:$(port_of http "$i")"
  deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS "$url/health/ready" >/dev/null 2>&1 \
      && [ "$(curl -fsS "$url/health/realtime" | grep -o '"status":"up"' | wc -l)" -ge "$members" ]; do
    alive "$i" || die "node $i exited; see $RUN/node-$i.log"
    [ "$SECONDS" -lt "$deadline" ] || die "node $i not ready with $members members within ${READY_TIMEOUT}s; see $RUN/node-$i.log"
    sleep 0.2
  done
}

stop_node() {
  local i="$1" p
  p="$(pid_of "$i")"
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$p" 2>/dev/null; then echo "node $i did not exit after SIGTERM; killing it" >&2; kill -KILL "$p"; fi
  fi
  rm -f "$RUN/node-$i.pid"
}

cmd="${1:-}"
case "$cmd" in
  start)
    n="${2:-3}"
    [ -f "$JAR" ] || die "$JAR not found: build it with: mvn -q -B package -DskipTests"
    for i in $(seq 1 "$(count)"); do alive "$i" && die "a cluster is already running in $RUN (stop it first)"; done
    echo "$n" > "$RUN/count"
    rm -f "$RUN/http-ports" "$RUN/cluster-ports" "$RUN/credentials"
    hp=""; cp=""
    for i in $(seq 1 "$n"); do hp="${hp:+$hp,}$(port_of http "$i")"; cp="${cp:+$cp,}$(port_of cluster "$i")"; done
    echo "$hp" > "$RUN/http-ports"; echo "$cp" > "$RUN/cluster-ports"
    for i in $(seq 1 "$n"); do start_node "$i"; done
    for i in $(seq 1 "$n"); do wait_ready "$i" "$n"; done
    credentials
    echo "cluster of $n nodes ready (run dir $RUN)"
    for i in $(seq 1 "$n"); do echo "  node-$i  http://127.0.0.1:$(port_of http "$i")  cluster 127.0.0.1:$(port_of cluster "$i")  pid $(pid_of "$i")"; done
    echo "  SCOPECAST_JWT_SECRET=$SCOPECAST_JWT_SECRET"
    echo "  SCOPECAST_API_KEY=$SCOPECAST_API_KEY"
    ;;
  stop)
    for i in $(seq 1 "$(count)"); do stop_node "$i" & done
    wait
    echo "stopped"
    ;;
  status)
    for i in $(seq 1 "$(count)"); do
      if alive "$i"; then state=running; else state=stopped; fi
      echo "node-$i pid=$(pid_of "$i") $state http=$(port_of http "$i") cluster=$(port_of cluster "$i")"
    done
    ;;
  kill)
    i="${2:?node number}"
    p="$(pid_of "$i")"; [ -n "$p" ] || die "node $i is not running"
    kill -KILL "$p"; rm -f "$RUN/node-$i.pid"
    echo "killed node $i (pid $p)"
    ;;
  restart)
    i="${2:?node number}"
    stop_node "$i"
    start_node "$i"
    wait_ready "$i" "$(count)"
    echo "node $i restarted (pid $(pid_of "$i"))"
    ;;
  rolling)
    for i in $(seq 1 "$(count)"); do "$0" restart "$i"; done
    ;;
  url)
    echo "http://127.0.0.1:$(port_of http "${2:?node number}")"
    ;;
  *)
    sed -n '2,16p' "$0"; exit 2
    ;;
esac
