import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The tiny model every test runs on, forged by the global setup. */
export const TINY_MODEL_DIR = path.join(ROOT, 'models', 'tiny');
/** The sentence encoder (all-MiniLM-L6-v2), converted by the global setup from PyPI's wheel when missing. */
export const ENCODER_DIR = path.join(ROOT, 'models', 'all-MiniLM-L6-v2');
export const ZH_ENCODER_DIR = path.join(ROOT, 'models', 'bge-small-zh-v1.5');
/** The assistant (SmolLM2-135M-Instruct), made by the global setup from PyPI's wheel when missing. */
export const ASSISTANT_DIR = path.join(ROOT, 'models', 'smollm2-135m-instruct');
/**
 * Whisper base, converted by the global setup from the PyPI packages of its CTranslate2 form when missing, into the
 * folder `AVA_ASR=auto` looks in. Tests hear with pocketsphinx unless they ask for Whisper (test/helpers/services.ts).
 */
export const WHISPER_BASE_DIR = path.join(ROOT, 'models', 'whisper');
/** The Piper voice, installed by the global setup from its PyPI wheel where `AVA_TTS_PIPER_VOICE` looks by default. */
export const PIPER_VOICE_FILE = path.join(ROOT, 'models', 'piper', 'en_US-joe-medium.onnx');
