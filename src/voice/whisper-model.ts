import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoProcessor, AutoTokenizer, type PreTrainedTokenizer, type Processor } from '@huggingface/transformers';
import { OnnxSession, type HostTensor } from '../inference/onnx-session.js';
import { offlineTransformers } from '../models/transformers-env.js';
import { WHISPER_GRAPH_FILES } from '../models/whisper-folder.js';
import { RecognizerError } from '../errors/errors.js';

/** The token ids and limits of a Whisper folder (its config.json and generation_config.json). */
export interface WhisperVocabulary {
  startOfTranscript: number;
  endOfText: number;
  transcribe: number;
  noTimestamps: number;
  /** Language code (`en`) → its token; English only: `en` alone. */
  languages: ReadonlyMap<string, number>;
  multilingual: boolean;
  suppress: number[];
  suppressAtBegin: number[];
  /** Most positions the decoder has (448). */
  textContext: number;
}

/**
 * The decoder's cache. Its rows come in groups, one per window of audio (a window's beams): per layer,
 * self-attention keys and values of each row ([R, H, P, D]), and cross-attention keys ([W, H, D, E]) and values
 * ([W, H, E, D]) of each window, shared by the window's rows.
 */
export interface DecoderCache {
  windows: number;
  past: number;
  self: Float32Array[][];
  cross: Float32Array[][];
}

/** One decoder step's result: the last position's logits of each row, and the cache that includes the step. */
export interface DecoderStep {
  logits: Float32Array[];
  cache: DecoderCache;
}

interface Dims {
  layers: number;
  heads: number;
  headSize: number;
  audioContext: number;
}

/**
 * A Whisper folder as `npm run models:whisper` writes it (its three graphs, see whisper-graph.ts) run through the
 * project's session: features (transformers.js's feature extractor), the encoder on a batch of utterances, decoder steps over rows with their cache, and the
 * tokenizer. It knows tensors; which tokens to feed is the caller's search.
 */
export class WhisperModel {
  private constructor(
    private readonly encoder: OnnxSession,
    private readonly crossCache: OnnxSession,
    private readonly decoder: OnnxSession,
    private readonly processor: Processor,
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly dims: Dims,
    readonly vocabulary: WhisperVocabulary,
  ) {}

  /** Loads a folder; one that is not a Whisper export is a {@link RecognizerError}. */
  static async load(dir: string, opts: { intraOpThreads?: number } = {}): Promise<WhisperModel> {
    const folder = path.resolve(dir);
    const json = async (name: string) => {
      try {
        return JSON.parse(await readFile(path.join(folder, name), 'utf8'));
      } catch (cause) {
        throw new RecognizerError(`${folder} has no readable ${name}; is it a Whisper export?`, { cause });
      }
    };
    const config = await json('config.json');
    const generation = await json('generation_config.json');
    offlineTransformers();
    try {
      const session = (name: string) =>
        OnnxSession.open(path.join(folder, 'onnx', name), { intraOpThreads: opts.intraOpThreads });
      const encoder = await session(WHISPER_GRAPH_FILES.encoder);
      const crossCache = await session(WHISPER_GRAPH_FILES.crossCache);
      const decoder = await session(WHISPER_GRAPH_FILES.decoderStep);
      const processor = await AutoProcessor.from_pretrained(folder, { local_files_only: true });
      const tokenizer = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
      const heads = config.decoder_attention_heads as number;
      const dims = {
        layers: config.decoder_layers as number,
        heads,
        headSize: (config.d_model as number) / heads,
        audioContext: config.max_source_positions as number,
      };
      return new WhisperModel(
        encoder,
        crossCache,
        decoder,
        processor,
        tokenizer,
        dims,
        vocabularyOf(config, generation),
      );
    } catch (cause) {
      throw new RecognizerError(`cannot load Whisper from ${folder}: ${(cause as Error).message}`, { cause });
    }
  }

  /** Log-mel features of 30 s (shorter audio padded, longer cut): [M, F]. */
  async features(pcm: Int16Array): Promise<Float32Array> {
    const { input_features } = await this.processor(Float32Array.from(pcm, (s) => s / 32768));
    return input_features.data as Float32Array;
  }

  /** The encoder's states of a batch of utterances' features: [B, E, C]. */
  async encode(features: readonly Float32Array[]): Promise<HostTensor> {
    const each = features[0].length;
    const data = new Float32Array(each * features.length);
    features.forEach((f, i) => data.set(f, i * each));
    const { last_hidden_state } = await this.encoder.run({
      input_features: {
        type: 'float32',
        data,
        dims: [features.length, each / (2 * this.dims.audioContext), 2 * this.dims.audioContext],
      },
    });
    return last_hidden_state;
  }

  /**
   * The first step: `rowsPerWindow` rows for each window of `hidden` ([W, E, C]), every one fed `tokens`, after the
   * windows' cross-attention cache is made.
   */
  async start(hidden: HostTensor, tokens: readonly number[], rowsPerWindow: number): Promise<DecoderStep> {
    const windows = hidden.dims[0];
    const out = await this.crossCache.run({ encoder_hidden_states: hidden });
    const f32 = (name: string) => out[name].data as Float32Array;
    const cache: DecoderCache = {
      windows,
      past: 0,
      self: this.perLayer(() => [new Float32Array(0), new Float32Array(0)]),
      cross: this.perLayer(() => []).map((_, i) => [f32(`cross.${i}.key`), f32(`cross.${i}.value`)]),
    };
    return this.step(
      Array.from({ length: windows * rowsPerWindow }, () => tokens),
      cache,
    );
  }

  /**
   * The cache for the next step: row r continues row `parents[r]`. With `keepWindows`, only those windows (by index,
   * in order) stay, and `parents` are rows of theirs: their cross-attention cache is copied, the rest freed.
   */
  reorder(cache: DecoderCache, parents: readonly number[], keepWindows?: readonly number[]): DecoderCache {
    const { heads, headSize, audioContext } = this.dims;
    const gather = (from: Float32Array, order: readonly number[], perRow: number) => {
      const to = new Float32Array(order.length * perRow);
      order.forEach((p, r) => to.set(from.subarray(p * perRow, (p + 1) * perRow), r * perRow));
      return to;
    };
    const self = cache.self.map((kv) => kv.map((t) => gather(t, parents, heads * cache.past * headSize)));
    const cross = keepWindows
      ? cache.cross.map((kv) => kv.map((t) => gather(t, keepWindows, heads * audioContext * headSize)))
      : cache.cross;
    return { windows: keepWindows?.length ?? cache.windows, past: cache.past, self, cross };
  }

  /** A step: row r of the cache fed `tokens[r]` (every row the same number of tokens). */
  async step(tokens: readonly (readonly number[])[], cache: DecoderCache): Promise<DecoderStep> {
    const { heads, headSize, audioContext } = this.dims;
    const rows = tokens.length;
    const T = tokens[0].length;
    const shaped = (data: Float32Array, dims: number[]): HostTensor => ({ type: 'float32', data, dims });
    const feeds: Record<string, HostTensor> = {
      input_ids: { type: 'int64', data: BigInt64Array.from(tokens.flat(), BigInt), dims: [rows, T] },
    };
    const wanted = ['logits'];
    cache.self.forEach(([key, value], i) => {
      feeds[`past.${i}.key`] = shaped(key, [rows, heads, cache.past, headSize]);
      feeds[`past.${i}.value`] = shaped(value, [rows, heads, cache.past, headSize]);
      feeds[`cross.${i}.key`] = shaped(cache.cross[i][0], [cache.windows, heads, headSize, audioContext]);
      feeds[`cross.${i}.value`] = shaped(cache.cross[i][1], [cache.windows, heads, audioContext, headSize]);
      wanted.push(`present.${i}.key`, `present.${i}.value`);
    });
    const out = await this.decoder.run(feeds, wanted);
    const logits = out.logits.data as Float32Array;
    const V = out.logits.dims[2];
    const f32 = (name: string) => out[name].data as Float32Array;
    return {
      logits: Array.from({ length: rows }, (_, r) => logits.subarray((r * T + T - 1) * V, (r * T + T) * V)),
      cache: {
        ...cache,
        past: cache.past + T,
        self: cache.self.map((_, i) => [f32(`present.${i}.key`), f32(`present.${i}.value`)]),
      },
    };
  }

  /** Token ids as text, special tokens left out. */
  text(tokens: readonly number[]): string {
    return this.tokenizer.decode(tokens as number[], { skip_special_tokens: true }).trim();
  }

  async close(): Promise<void> {
    await Promise.all([this.encoder.close(), this.crossCache.close(), this.decoder.close()]);
  }

  private perLayer<T>(make: () => T): T[] {
    return Array.from({ length: this.dims.layers }, make);
  }
}

/** Reads the ids the search needs from a folder's configs. */
function vocabularyOf(config: Record<string, unknown>, g: Record<string, unknown>): WhisperVocabulary {
  const langToId = (g.lang_to_id ?? {}) as Record<string, number>;
  const multilingual = g.is_multilingual === true;
  const taskToId = (g.task_to_id ?? {}) as Record<string, number>;
  const languages = new Map(
    multilingual ? Object.entries(langToId).map(([t, id]) => [t.replace(/^<\|(.+)\|>$/, '$1'), id] as const) : [],
  );
  const noTimestamps = g.no_timestamps_token_id as number;
  return {
    startOfTranscript: g.decoder_start_token_id as number,
    endOfText: g.eos_token_id as number,
    // English-only models have no task token; their prompt is <|startoftranscript|><|notimestamps|>.
    transcribe: taskToId.transcribe ?? -1,
    noTimestamps,
    languages: multilingual ? languages : new Map([['en', -1]]),
    multilingual,
    suppress: (g.suppress_tokens ?? []) as number[],
    suppressAtBegin: (g.begin_suppress_tokens ?? []) as number[],
    textContext: config.max_target_positions as number,
  };
}
