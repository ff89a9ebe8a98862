#!/usr/bin/env bash
# The whole test suite: behaviour tests, integration tests against real servers and the packaged jar.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
mvn -B -ntp verify "$@"
