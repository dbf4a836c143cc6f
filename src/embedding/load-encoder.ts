import path from 'node:path';
import type { AvaConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { exists } from '../models/folder-files.js';
import { SentenceEncoder } from './sentence-encoder.js';
import { CachedEmbedder, type TextEmbedder } from './text-embedder.js';

/** A sentence encoder and how to release it. */
export interface LoadedEncoder {
  /** For texts that come back (intent examples, knowledge entries at each rebuild): cached by text. */
  embedder: TextEmbedder;
  /** For texts seen once (messages): not cached, so they never push the others out. */
  encoder: TextEmbedder;
  close(): Promise<void>;
}

/**
 * The configured sentence encoder (`AVA_ENCODER`), or undefined for lexical recognition only: when it is `off`, or
 * when its folder does not exist (with a warning saying how to make it). A folder that exists but cannot be loaded
 * throws, so a corrupt model stops the worker at start instead of failing messages later.
 */
export async function loadEncoder(config: AvaConfig, log: Logger): Promise<LoadedEncoder | undefined> {
  if (config.encoder === 'off') return undefined;
  const dir = await encoderDir(config);
  if (!dir) {
    log.warn({ encoder: config.encoder, looked: [config.encoder, path.join(config.modelsDir, config.encoder)] }, 'sentence encoder not found: intents and knowledge are matched by their words only (make it with `npm run models:encoder`, or set AVA_ENCODER=off)');
    return undefined;
  }
  const encoder = await SentenceEncoder.load(dir, { intraOpThreads: config.intraOpThreads });
  log.info({ encoder: encoder.model, dims: encoder.dims }, 'sentence encoder loaded');
  return { embedder: new CachedEmbedder(encoder), encoder, close: () => encoder.close() };
}

/** The configured sentence encoder's folder (`AVA_ENCODER`, a path or a name under the models folder), if it exists. */
export async function encoderDir(config: AvaConfig): Promise<string | undefined> {
  if (config.encoder === 'off') return undefined;
  const dir = (await exists(config.encoder)) ? config.encoder : path.join(config.modelsDir, config.encoder);
  return (await exists(dir)) ? dir : undefined;
}
