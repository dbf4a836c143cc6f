import { access, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { ModelForgeError } from '../errors/errors.js';
import { exists, moveIntoPlace, writeJson } from './folder-files.js';
import { buildGpt2Graph, GPT2_OPSET, type WeightKind } from './gpt2-graph.js';
import { GPT2_EOS_TOKEN_ID, parameterCount, PRESETS, type ModelPreset } from './presets.js';
import { SeededNormal } from './seeded-normal.js';
import { buildTokenizerFiles } from './tokenizer-files.js';

/** Options of one forge run. */
export interface ForgeOptions {
  /** Preset name: `tiny`, `distilgpt2` or `gpt2`. */
  preset: string;
  /** Output model directory; must not exist yet unless `force`. */
  outDir: string;
  /** Weight seed; the same seed gives byte-identical files. */
  seed?: number;
  /** Replace an existing directory (atomically, after the new one is complete). */
  force?: boolean;
  /** Called as weights are generated: parameters done and total. */
  onProgress?: (done: number, total: number) => void;
}

/** Default weight seed. */
export const DEFAULT_FORGE_SEED = 42;

/**
 * Forges a complete Hugging Face-style GPT-2 model directory: config, generation config, tokenizer and
 * `onnx/model.onnx`. Everything is written into a temporary sibling folder and renamed into place at the end, so an
 * interrupted or failed forge never leaves a half-written model behind.
 */
export async function forgeModel(opts: ForgeOptions): Promise<{ outDir: string; parameters: number; bytes: number }> {
  const preset = PRESETS[opts.preset];
  if (!preset) {
    throw new ModelForgeError(`unknown preset "${opts.preset}"`, {
      hint: `choose one of: ${Object.keys(PRESETS).join(', ')}`,
    });
  }
  const seed = opts.seed ?? DEFAULT_FORGE_SEED;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0x7fffffff) {
    throw new ModelForgeError(`seed must be an integer in [0, 2147483647], got ${opts.seed}`);
  }
  const outDir = path.resolve(opts.outDir);
  if (!opts.force && (await exists(outDir))) {
    throw new ModelForgeError(`output folder ${outDir} already exists`, {
      hint: 'pass --force to replace it, or choose another --out',
    });
  }
  const parent = path.dirname(outDir);
  try {
    await mkdir(parent, { recursive: true });
    await access(parent, constants.W_OK);
  } catch (cause) {
    throw new ModelForgeError(`output folder ${parent} is not writable`, { cause });
  }

  const tokenizer = await buildTokenizerFiles();
  const tmp = await mkdtemp(path.join(parent, `.${path.basename(outDir)}.forging-`));
  await chmod(tmp, 0o755);
  try {
    await mkdir(path.join(tmp, 'onnx'));
    const total = parameterCount(preset);
    let done = 0;
    const rng = new SeededNormal(seed);
    const graph = buildGpt2Graph(preset, (_name, shape, kind) => {
      const data = initWeight(rng, preset, shape, kind);
      done += data.length;
      opts.onProgress?.(done, total);
      return data;
    });
    const bytes = graph.encode({ opset: GPT2_OPSET, producer: 'ava-model-forge', graphName: `gpt2-${preset.name}` });
    await writeFile(path.join(tmp, 'onnx', 'model.onnx'), bytes);
    await writeJson(path.join(tmp, 'config.json'), modelConfig(preset, seed));
    await writeJson(path.join(tmp, 'generation_config.json'), {
      bos_token_id: GPT2_EOS_TOKEN_ID,
      eos_token_id: GPT2_EOS_TOKEN_ID,
      pad_token_id: GPT2_EOS_TOKEN_ID,
    });
    await writeJson(path.join(tmp, 'tokenizer.json'), tokenizer.tokenizerJson);
    await writeJson(path.join(tmp, 'tokenizer_config.json'), tokenizer.tokenizerConfig);
    await moveIntoPlace(tmp, outDir, opts.force ?? false);
    return { outDir, parameters: total, bytes: bytes.byteLength };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof ModelForgeError) throw err;
    throw new ModelForgeError(`forging ${preset.name} into ${outDir} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/√(2·n_layer), zero biases, unit LayerNorm gains. */
function initWeight(rng: SeededNormal, p: ModelPreset, shape: number[], kind: WeightKind): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  switch (kind) {
    case 'embedding':
      return rng.fill(out, 0.02);
    case 'linear':
      return rng.fill(out, 0.02 * p.blockScale);
    case 'residual-linear':
      return rng.fill(out, (0.02 / Math.sqrt(2 * p.nLayer)) * p.blockScale);
    case 'ln-gain':
      return out.fill(1);
    case 'bias':
    case 'ln-bias':
      return out;
  }
}

function modelConfig(p: ModelPreset, seed: number): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    n_layer: p.nLayer,
    n_head: p.nHead,
    n_embd: p.nEmbd,
    n_positions: p.nPositions,
    n_ctx: p.nPositions,
    n_inner: null,
    vocab_size: p.vocabSize,
    bos_token_id: GPT2_EOS_TOKEN_ID,
    eos_token_id: GPT2_EOS_TOKEN_ID,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    initializer_range: 0.02,
    tie_word_embeddings: true,
    use_cache: true,
    ava_forge: { preset: p.name, seed, block_scale: p.blockScale, opset: GPT2_OPSET },
  };
}
