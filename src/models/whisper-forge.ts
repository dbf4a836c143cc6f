import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { ModelForgeError } from '../errors/errors.js';
import { exists, moveIntoPlace, writeJson } from './folder-files.js';
import { SeededNormal } from './seeded-normal.js';
import { buildTokenizerFiles, END_OF_TEXT } from './tokenizer-files.js';
import type { WhisperDims, WhisperWeights } from './whisper-graph.js';
import { writeWhisperFolder, type WhisperGeneration } from './whisper-folder.js';

/** English-only Whisper's special tokens after GPT-2's vocabulary, then the timestamps <|0.00|> … <|30.00|>. */
const SPECIALS = [
  '<|startoftranscript|>',
  '<|translate|>',
  '<|transcribe|>',
  '<|startoflm|>',
  '<|startofprev|>',
  '<|nocaptions|>',
  '<|notimestamps|>',
];
const FIRST_SPECIAL = 50257;
const TIMESTAMPS = 1501;
const VOCAB = FIRST_SPECIAL + SPECIALS.length + TIMESTAMPS;
const idOf = (token: string) => FIRST_SPECIAL + SPECIALS.indexOf(token);

/** Whisper shapes: `tiny.en` is OpenAI's smallest English model; `test` is small enough for every test run. */
export const WHISPER_PRESETS: Record<string, WhisperDims> = {
  'tiny.en': {
    nMels: 80,
    nAudioCtx: 1500,
    nTextCtx: 448,
    dModel: 384,
    nHeads: 6,
    encoderLayers: 4,
    decoderLayers: 4,
    ffnDim: 1536,
    vocabSize: VOCAB,
  },
  test: {
    nMels: 80,
    nAudioCtx: 1500,
    nTextCtx: 448,
    dModel: 64,
    nHeads: 4,
    encoderLayers: 2,
    decoderLayers: 2,
    ffnDim: 256,
    vocabSize: VOCAB,
  },
};

/**
 * Forges an English-only Whisper folder as the recogniser loads it ({@link writeWhisperFolder}: configs, tokenizer and
 * the three graphs), with seeded random weights: it runs like a real one and transcribes noise. Written to a
 * temporary sibling and renamed into place.
 */
export async function forgeWhisper(opts: {
  preset: string;
  outDir: string;
  seed?: number;
  force?: boolean;
}): Promise<{ outDir: string }> {
  const dims = WHISPER_PRESETS[opts.preset];
  if (!dims)
    throw new ModelForgeError(`unknown Whisper preset "${opts.preset}"`, {
      hint: `choose one of: ${Object.keys(WHISPER_PRESETS).join(', ')}`,
    });
  const outDir = path.resolve(opts.outDir);
  if (!opts.force && (await exists(outDir)))
    throw new ModelForgeError(`output folder ${outDir} already exists`, { hint: 'pass --force to replace it' });
  await mkdir(path.dirname(outDir), { recursive: true });
  const tmp = await mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.forging-`));
  try {
    const seed = opts.seed ?? 42;
    await writeWhisperFolder(tmp, dims, seededWeights(seed), ENGLISH_ONLY, { forged: opts.preset, seed });
    await writeTokenizer(tmp, dims);
    await moveIntoPlace(tmp, outDir, opts.force ?? false);
    return { outDir };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof ModelForgeError) throw err;
    throw new ModelForgeError(`forging Whisper ${opts.preset} into ${outDir} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Seeded random weights (LayerNorm gains 1, biases 0), drawn in the order the graphs ask for them. */
function seededWeights(seed: number): WhisperWeights {
  const rng = new SeededNormal(seed);
  return (_name, shape, kind) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (kind === 'ln-gain') return out.fill(1);
    if (kind === 'bias' || kind === 'ln-bias') return out;
    return rng.fill(out, 0.02);
  };
}

/** English-only Whisper's generation settings. */
const ENGLISH_ONLY: WhisperGeneration = {
  tokens: {
    endOfText: FIRST_SPECIAL - 1,
    startOfTranscript: idOf('<|startoftranscript|>'),
    transcribe: idOf('<|transcribe|>'),
    translate: idOf('<|translate|>'),
    noTimestamps: idOf('<|notimestamps|>'),
    languages: {},
  },
  suppress: [],
  beginSuppress: [220, FIRST_SPECIAL - 1],
};

/** GPT-2's tokenizer with Whisper's special and timestamp tokens added. */
async function writeTokenizer(tmp: string, dims: WhisperDims): Promise<void> {
  const gpt2 = await buildTokenizerFiles();
  const added = [...SPECIALS, ...Array.from({ length: TIMESTAMPS }, (_, i) => `<|${(i * 0.02).toFixed(2)}|>`)].map(
    (content, i) => ({
      id: FIRST_SPECIAL + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }),
  );
  await writeJson(path.join(tmp, 'tokenizer.json'), {
    ...gpt2.tokenizerJson,
    added_tokens: [...(gpt2.tokenizerJson.added_tokens as unknown[]), ...added],
  });
  await writeJson(path.join(tmp, 'tokenizer_config.json'), {
    ...gpt2.tokenizerConfig,
    tokenizer_class: 'WhisperTokenizer',
    pad_token: END_OF_TEXT,
    model_max_length: dims.nTextCtx,
  });
}
