import path from 'node:path';
import type { AvaConfig } from '../config/config.js';
import type { Language } from '../language/search-terms.js';
import type { Logger } from '../logging/logger.js';
import { exists } from '../models/folder-files.js';
import { chooseInt8Kernel } from '../inference/int8-kernel.js';
import { defaultEngineCacheDir } from '../inference/engine-graph-converter.js';
import { SentenceEncoder } from './sentence-encoder.js';
import { CachedEmbedder, type TextEmbedder } from './text-embedder.js';

/** The configuration an encoder is found and loaded with. */
export type EncoderSections = Pick<AvaConfig, 'semantic' | 'runtime' | 'model'>;

/** A sentence encoder and how to release it. */
export interface LoadedEncoder {
  /** For texts that come back (intent examples, knowledge entries at each rebuild): cached by text. */
  embedder: TextEmbedder;
  /** For texts seen once (messages): not cached, so they never push the others out. */
  encoder: TextEmbedder;
  close(): Promise<void>;
}

/** The loaded encoders by the language of the texts they embed; a language without one is matched by words. */
export type LanguageEncoders = Partial<Record<Language, LoadedEncoder>>;

/** Each language's configured encoder setting: a folder, a name under the models folder, or `off`. */
function configuredEncoder(config: Pick<AvaConfig, 'semantic'>, language: Language): string {
  return language === 'zh' ? config.semantic.zhEncoder : config.semantic.encoder;
}

/**
 * The configured sentence encoders (`AVA_ENCODER` for English, `AVA_ENCODER_ZH` for Chinese), each absent for
 * lexical recognition only in its language: when it is `off`, or when its folder does not exist (with a warning
 * saying how to make it). A folder that exists but cannot be loaded throws, so a corrupt model stops the worker at
 * start instead of failing messages later.
 */
export async function loadEncoders(config: EncoderSections, log: Logger): Promise<LanguageEncoders> {
  const loaded: LanguageEncoders = {};
  try {
    for (const language of ['en', 'zh'] as const) {
      const encoder = await loadEncoder(config, language, log);
      if (encoder) loaded[language] = encoder;
    }
  } catch (err) {
    await Promise.all(Object.values(loaded).map((e) => e.close()));
    throw err;
  }
  return loaded;
}

async function loadEncoder(
  config: EncoderSections,
  language: Language,
  log: Logger,
): Promise<LoadedEncoder | undefined> {
  const setting = configuredEncoder(config, language);
  if (setting === 'off') return undefined;
  const dir = await encoderDir(config, language);
  if (!dir) {
    log.warn(
      { encoder: setting, language, looked: [setting, path.join(config.model.dir, setting)] },
      `sentence encoder not found: intents and knowledge in this language are matched by their words only (make it with \`npm run models:encoder${language === 'zh' ? ' -- --encoder bge-small-zh-v1.5' : ''}\`, or set ${language === 'zh' ? 'AVA_ENCODER_ZH' : 'AVA_ENCODER'}=off)`,
    );
    return undefined;
  }
  const encoder = await openEncoder(dir, config, log);
  log.info({ encoder: encoder.model, language, dims: encoder.dims }, 'sentence encoder loaded');
  return { embedder: new CachedEmbedder(encoder), encoder, close: () => encoder.close() };
}

/** A language's configured sentence encoder's folder (a path or a name under the models folder), if it exists. */
export async function encoderDir(
  config: Pick<AvaConfig, 'semantic' | 'model'>,
  language: Language = 'en',
): Promise<string | undefined> {
  const setting = configuredEncoder(config, language);
  if (setting === 'off') return undefined;
  const dir = (await exists(setting)) ? setting : path.join(config.model.dir, setting);
  return (await exists(dir)) ? dir : undefined;
}

/** Sentences the int8 encoder must embed as float32 does before it is used: short and long, English and Chinese. */
const CHECK_SENTENCES = [
  'hello',
  'Where is my order MP-10001? It has been a week since I paid.',
  'Can I return a lamp that arrived broken, and who pays for the shipping back?',
  'The quick brown fox jumps over the lazy dog near the riverbank at dawn.',
  '你好，请问我的订单什么时候发货？',
  'ok',
];
/** Least cosine between an int8 embedding and the float32 one for the int8 form to be used. */
export const INT8_ENCODER_MIN_COSINE = 0.99;

/**
 * The encoder in the configured precision. int8 runs in the integer kernel exact on this CPU (the engine's choice,
 * `AVA_ENGINE_INT8_KERNEL`) and is used only when it holds: every check sentence's embedding within cosine
 * {@link INT8_ENCODER_MIN_COSINE} of the float32 encoder's. Otherwise, or when no int8 form can be built (an encoder
 * not converted by this project), the float32 encoder is used and a warning says why.
 */
export async function openEncoder(
  dir: string,
  config: Pick<AvaConfig, 'semantic' | 'runtime'>,
  log: Logger,
): Promise<SentenceEncoder> {
  const fp32 = await SentenceEncoder.load(dir, { intraOpThreads: config.runtime.intraOpThreads });
  if (config.semantic.precision === 'fp32') return fp32;
  let int8: SentenceEncoder | undefined;
  try {
    const kernel = await chooseInt8Kernel(config.runtime.int8Kernel);
    int8 = await SentenceEncoder.load(dir, {
      intraOpThreads: config.runtime.intraOpThreads,
      int8: { formulation: kernel.formulation, cacheDir: config.runtime.cacheDir ?? defaultEngineCacheDir() },
    });
    const [exact, quantized] = [await fp32.embed(CHECK_SENTENCES), await int8.embed(CHECK_SENTENCES)];
    const cosine = Math.min(...exact.map((v, i) => v.reduce((sum, x, k) => sum + x * quantized[i][k], 0)));
    if (cosine >= INT8_ENCODER_MIN_COSINE) {
      log.info(
        { encoder: int8.model.id, kernel, leastCosineToFp32: Number(cosine.toFixed(4)) },
        'sentence encoder in int8',
      );
      await fp32.close();
      return int8;
    }
    log.warn(
      { encoder: fp32.model.id, leastCosineToFp32: cosine, needed: INT8_ENCODER_MIN_COSINE },
      'the int8 encoder strays from float32; using float32',
    );
  } catch (err) {
    log.warn(
      { err, encoder: fp32.model.id },
      'no int8 form of the sentence encoder; using float32 (AVA_ENCODER_PRECISION=fp32 says so without this warning)',
    );
  }
  await int8?.close();
  return fp32;
}
