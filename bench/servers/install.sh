#!/usr/bin/env bash
# Installs the npm packages of the servers that bench/ compares Scopecast with (bench/servers/*/),
# exactly as their committed package-lock.json pins them. Needs node and npm.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "node is needed for the comparison servers (apt-get install nodejs npm)" >&2; exit 1; }
for dir in socketio ws; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
echo "comparison servers installed: $(cd socketio && node -p 'require("socket.io/package.json").version') (socket.io), $(cd ws && node -p 'require("ws/package.json").version') (ws), node $(node --version)"
