#!/usr/bin/env bash
# The test command (README, `npm test`, `.ci/run`): installs what is missing, starts Redis, PostgreSQL and FerretDB
# on loopback, type-checks, builds dist/, forges the tiny model when absent (vitest global setup) and runs every test on the real services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
# Services this run starts are stopped when it ends; ones already running (a developer's) are left running.
started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
trap 'if [ "$started_services" = 1 ]; then bash scripts/services.sh down >/dev/null; fi' EXIT
bash scripts/services.sh up
# The dashboard test drives Debian's Chromium through playwright-core; the TLS test makes its certificates with openssl;
# the operations-kit test checks the alert rules and the Grafana queries with Prometheus's promtool.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v openssl >/dev/null || missing+=(openssl)
command -v promtool >/dev/null || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[test] installing ${missing[*]} from Debian packages" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/tmp/ava-test-packages.log 2>&1 \
    || { echo "[test] installing ${missing[*]} failed; see /tmp/ava-test-packages.log" >&2; exit 1; }
fi
# The deploy test validates the Kubernetes manifests with kubernetes-validate (PyPI), in a virtualenv of its own.
venv="${AVA_CACHE_DIR:-$HOME/.cache/ava}/venv"
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "[test] installing kubernetes-validate into $venv" >&2
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q kubernetes-validate==1.37.0; } >/tmp/ava-test-venv.log 2>&1 \
    || { echo "[test] installing kubernetes-validate failed; see /tmp/ava-test-venv.log" >&2; exit 1; }
fi
npx tsc --noEmit
# The build the README's commands and the image run; tests start workers and the API from it.
node scripts/build.mjs
npx vitest run "$@"
