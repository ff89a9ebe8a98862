#!/usr/bin/env bash
# Installs what the tests need and a fresh machine may lack (Debian/Ubuntu, run as root or with sudo):
# redis-server for the durable-replay tests, chromium for the browser test of the demo page.
# Java 17, Maven and Node 20+ with npm are assumed (see README).
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: missing ${need[*]} and no apt-get here; install them yourself (the Redis tests are skipped without redis-server)" >&2
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${need[*]} with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null || echo "setup: apt-get update failed; trying the install anyway" >&2
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
