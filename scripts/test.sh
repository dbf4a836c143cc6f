#!/usr/bin/env bash
# The test command (README, `npm test`, `.ci/run`): installs what is missing, starts Redis and FerretDB on loopback,
# type-checks, forges the tiny model when absent (vitest global setup) and runs every test on the real services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
bash scripts/services.sh up
npx tsc --noEmit
npx vitest run "$@"
