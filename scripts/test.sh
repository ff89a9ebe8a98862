#!/usr/bin/env bash
# The whole test suite: behaviour tests, integration tests against real servers and the packaged jar.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
mvn -B -ntp verify "$@"
# the JavaScript client against the jar just built, then the demo page in a real browser
(cd clients/js && npm ci --no-audit --no-fund --silent && npm test && npm run test:browser)
