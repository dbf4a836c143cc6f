#!/usr/bin/env bash
# `npm run demo`: the main job on the bundled defaults. Installs what is missing, forges the tiny model if absent,
# starts the services, imports the sample shop FAQ into the knowledge base, starts one worker, enqueues the sample
# messages (Chinese and English), prints each reply as it is stored with its intent and the knowledge it used, then
# stops the worker and the services it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
MODEL_DIR="${AVA_MODELS_DIR:-models}/${AVA_MODEL:-tiny}"
if [ ! -f "$MODEL_DIR/onnx/model.onnx" ] && [ "${AVA_MODEL:-tiny}" = tiny ]; then
  npx tsx src/cli/forge-command.ts --preset tiny --out "$MODEL_DIR"
fi
started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
bash scripts/services.sh up
# The sample shop's knowledge base (idempotent: a second run changes nothing).
node --import tsx src/cli/main.ts kb import kb/shop-faq.en.md kb/shop-faq.zh.jsonl
mkdir -p .services
node --import tsx workers/message-worker.ts >.services/demo-worker.log 2>&1 &
worker=$!
cleanup() {
  kill -TERM "$worker" 2>/dev/null && wait "$worker" 2>/dev/null || true
  if [ "$started_services" = 1 ]; then bash scripts/services.sh down; fi
}
trap cleanup EXIT
# Wait for the worker to load its model; if it dies instead, show why.
for _ in $(seq 1 600); do
  grep -q '"worker ready"' .services/demo-worker.log 2>/dev/null && break
  if ! kill -0 "$worker" 2>/dev/null; then
    echo "the worker failed to start:" >&2
    tail -n 5 .services/demo-worker.log >&2
    exit 1
  fi
  sleep 0.1
done
node --import tsx src/cli/demo-client.ts sample/messages.jsonl
echo "worker log: .services/demo-worker.log"
