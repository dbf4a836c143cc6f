import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelLoadError } from '../errors/errors.js';
import { buildGpt2Graph, GPT2_OPSET, type WeightPrecision } from '../models/gpt2-graph.js';
import type { Int8Formulation } from '../models/int8-matmul.js';
import { modelRevision } from '../models/model-revision.js';
import { cachedFile } from '../models/folder-files.js';
import { ExportWeights } from '../models/export-weights.js';
import type { ModelPreset } from '../models/presets.js';
import { buildLlamaGraph, LLAMA_OPSET } from '../models/llama-graph.js';
import type { LlamaShape } from '../models/llama-shape.js';
import { llamaShapeFromConfig } from '../models/llama-weights.js';

const { onnx } = onnxProto;

/** Bumped whenever the converter's output changes, so graphs converted by an older version are not reused. */
const ENGINE_GRAPH_VERSION = 2;
/** Bumped whenever the int8 form changes (its graphs are cached apart from the float32 ones). */
const INT8_GRAPH_VERSION = 7;
/** Bumped whenever the Llama engine graph (float32 or int8) changes. */
const LLAMA_GRAPH_VERSION = 4;

/** Where converted graphs go by default: `$XDG_CACHE_HOME/ava/engine`, else `~/.cache/ava/engine`. */
export function defaultEngineCacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ava', 'engine');
}

/** A decoder-only model's architecture, by family: what the engine graph is built from. */
export type DecoderArchitecture = { family: 'gpt2'; preset: ModelPreset } | { family: 'llama'; shape: LlamaShape };

/** What the engine needs of any family: layers, the cached (key/value) heads, head size, vocabulary and window. */
export interface EngineShape {
  nLayer: number;
  nKvHead: number;
  headDim: number;
  vocabSize: number;
  window: number;
}

/** The engine's view of an architecture. */
export function engineShapeOf(arch: DecoderArchitecture): EngineShape {
  if (arch.family === 'llama') {
    const s = arch.shape;
    return { nLayer: s.nLayer, nKvHead: s.nKvHead, headDim: s.headDim, vocabSize: s.vocabSize, window: s.window };
  }
  const p = arch.preset;
  return {
    nLayer: p.nLayer,
    nKvHead: p.nHead,
    headDim: p.nEmbd / p.nHead,
    vocabSize: p.vocabSize,
    window: p.nPositions,
  };
}

/** Architecture read from a model's `config.json`: GPT-2, or the Llama family (llama, qwen2). */
export async function readArchitecture(modelDir: string): Promise<DecoderArchitecture> {
  const c = JSON.parse(await readFile(path.join(modelDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (c.model_type === 'llama' || c.model_type === 'qwen2')
    return { family: 'llama', shape: llamaShapeFromConfig(c, path.basename(modelDir), modelDir) };
  return { family: 'gpt2', preset: readGpt2Preset(c, modelDir) };
}

/** A GPT-2 `config.json` as a preset. */
export function readGpt2Preset(c: Record<string, unknown>, modelDir: string): ModelPreset {
  const num = (k: string) => {
    if (typeof c[k] !== 'number')
      throw new ModelLoadError(`${modelDir}/config.json has no numeric ${k}; is this a GPT-2 model?`);
    return c[k] as number;
  };
  if (c.model_type !== 'gpt2')
    throw new ModelLoadError(
      `${modelDir}/config.json: model_type is ${JSON.stringify(c.model_type)}, expected "gpt2", "llama" or "qwen2"`,
    );
  return {
    name: path.basename(modelDir),
    nLayer: num('n_layer'),
    nHead: num('n_head'),
    nEmbd: num('n_embd'),
    nPositions: num('n_positions'),
    vocabSize: num('vocab_size'),
    blockScale: 1,
  };
}

/**
 * The engine graph of a model directory: rewritten from its standard export (GPT-2, forged or real, with merged
 * tensors or quantized weights, see {@link ExportWeights}; or a Llama-family folder) by taking its weights by their
 * Hugging Face names and building the family's engine form around them (see `GraphMode` in gpt2-graph.ts).
 * Done once and cached in `cacheDir` under the source graph's revision, so a changed model is converted again and
 * the model directory is only read (it may be a read-only mount). The file appears by an atomic rename from a
 * uniquely named temporary file, so processes converting the same model at once never see a partial graph.
 * GPT-2's int8 graph is built and cached in `formulation` (see {@link Int8Formulation}); the Llama family's int8
 * graph has one form (int8 blocks, see blockwise-int8.ts).
 * Returns the engine graph's path and the source graph's revision.
 */
export async function ensureEngineGraph(
  modelDir: string,
  cacheDir = defaultEngineCacheDir(),
  precision: WeightPrecision = 'fp32',
  formulation: Int8Formulation = 'u8u8',
): Promise<{ path: string; sourceRevision: string }> {
  const revision = await modelRevision(modelDir);
  const { family } = await readArchitecture(modelDir);
  const int8Form = family === 'gpt2' ? `${formulation}.${INT8_GRAPH_VERSION}` : 'block';
  const form = precision === 'fp32' ? '' : `-${precision}-${int8Form}`;
  const version = family === 'gpt2' ? ENGINE_GRAPH_VERSION : LLAMA_GRAPH_VERSION;
  const target = path.join(cacheDir, `${family}-${revision}-v${version}${form}.onnx`);
  await cachedFile(
    target,
    () => convertToEngineGraph(modelDir, precision, formulation),
    'point AVA_ENGINE_CACHE_DIR at a writable folder',
  );
  return { path: target, sourceRevision: revision };
}

/** Converts a model directory's standard graph into engine-graph bytes, its linear layers in `precision`. */
export async function convertToEngineGraph(
  modelDir: string,
  precision: WeightPrecision = 'fp32',
  formulation: Int8Formulation = 'u8u8',
): Promise<Uint8Array> {
  const arch = await readArchitecture(modelDir);
  const source = path.join(modelDir, 'onnx', 'model.onnx');
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(await readFile(source));
  } catch (cause) {
    throw new ModelLoadError(`${source} is not a readable ONNX model: ${(cause as Error).message}`, { cause });
  }
  const weights = new ExportWeights(model, source);
  const named = (name: string, shape: number[]) => {
    const data = weights.get(name);
    if (!data)
      throw new ModelLoadError(
        `${source} has no weight named ${name}; only exports that keep Hugging Face weight names can be converted`,
      );
    const want = shape.reduce((a, b) => a * b, 1);
    if (data.length !== want)
      throw new ModelLoadError(
        `${source}: weight ${name} has ${data.length} values, expected ${want} (shape ${shape.join('×')})`,
      );
    return data;
  };
  const producer = { producer: 'ava-engine-converter' };
  if (arch.family === 'llama') {
    const graph = buildLlamaGraph(arch.shape, named, 'engine', precision);
    return graph.encode({ opset: LLAMA_OPSET, ...producer, graphName: `${arch.shape.name}-engine` });
  }
  checkTiedHead(weights, arch.preset, source);
  const graph = buildGpt2Graph(arch.preset, named, 'engine', precision, formulation);
  return graph.encode({ opset: GPT2_OPSET, ...producer, graphName: `${arch.preset.name}-engine` });
}

/**
 * The engine ties the LM head to the token embedding (GPT-2's own weights do). Exports that write the head as a
 * tensor of its own must hold the embedding transposed there — to within the quantization step of an int8 export —
 * or the engine would answer with another model's logits; an untied head is refused.
 */
function checkTiedHead(weights: ExportWeights, arch: ModelPreset, source: string): void {
  const head = weights.lmHead();
  if (head === undefined || head === 'tied') return;
  const wte = weights.get('transformer.wte.weight');
  const C = arch.nEmbd;
  const V = arch.vocabSize;
  if (!wte || head.length !== C * V)
    throw new ModelLoadError(`${source}: its LM head has ${head.length} values, expected ${C}×${V}`);
  let largest = 0;
  let worst = 0;
  for (let v = 0; v < V; v++) {
    for (let c = 0; c < C; c++) {
      const e = wte[v * C + c];
      largest = Math.max(largest, Math.abs(e));
      worst = Math.max(worst, Math.abs(head[c * V + v] - e));
    }
  }
  // An int8 tensor is read back on 255 steps of its range; the head may have been quantized on its own.
  if (worst > (largest / 127) * 1.01 + 1e-6) {
    throw new ModelLoadError(
      `${source}: its LM head is not the token embedding transposed (largest difference ${worst.toPrecision(3)}); the engine ties the head to transformer.wte.weight, so untied models are not supported`,
    );
  }
}
