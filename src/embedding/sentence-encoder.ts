import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import { offlineTransformers } from '../models/transformers-env.js';
import { ModelLoadError } from '../errors/errors.js';
import { OnnxSession, type HostTensor } from '../inference/onnx-session.js';
import { modelRevision } from '../models/model-revision.js';
import type { Int8Formulation } from '../models/int8-matmul.js';
import { ensureInt8EncoderGraph } from './int8-encoder-graph.js';
import type { TextEmbedder } from './text-embedder.js';

/** Options of the encoder. */
export interface SentenceEncoderOptions {
  /** ONNX Runtime intra-op threads; 0 lets the runtime choose. */
  intraOpThreads?: number;
  /** Most texts per graph run. */
  maxBatch?: number;
  /**
   * Runs the int8 form of the graph (built once and cached in `cacheDir`; see {@link ensureInt8EncoderGraph}) in
   * `formulation`, which must be exact on this CPU (see `chooseInt8Kernel`).
   */
  int8?: { formulation: Int8Formulation; cacheDir: string };
}

/** Longest input when the model folder does not say (sentence-transformers' default for MiniLM). */
const DEFAULT_MAX_TOKENS = 256;

/**
 * A sentence-embedding model converted by `npm run models:encoder` (or any export with a `sentence_embedding`
 * output): texts in, unit vectors out, through the project's one ONNX Runtime session wrapper. Texts are run in
 * batches of similar length, so little is spent on padding. Loading checks the model end to end: a missing or
 * corrupt file fails at start-up, not at the first message.
 */
export class SentenceEncoder implements TextEmbedder {
  private constructor(
    /** The model folder's name and the revision of its graph (`+int8-<formulation>` for its int8 form). */
    readonly model: { readonly id: string; readonly revision: string },
    /** Dimensions of an embedding. */
    readonly dims: number,
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly session: OnnxSession,
    /** Longest input in tokens (special tokens included); longer texts are truncated. */
    readonly maxTokens: number,
    private readonly maxBatch: number,
  ) {}

  /** Loads the encoder from a model folder and embeds one text to check it. */
  static async load(dir: string, opts: SentenceEncoderOptions = {}): Promise<SentenceEncoder> {
    offlineTransformers();
    const folder = path.resolve(dir);
    const graph = path.join(folder, 'onnx', 'model.onnx');
    try {
      await access(graph);
    } catch (cause) {
      throw new ModelLoadError(`the sentence encoder in ${folder} has no onnx/model.onnx`, {
        cause,
        hint: 'convert it again with `npm run models:encoder -- --force`',
      });
    }
    let session: OnnxSession | undefined;
    try {
      const tokenizer = await AutoTokenizer.from_pretrained(folder, { local_files_only: true });
      const run = opts.int8 ? await ensureInt8EncoderGraph(folder, opts.int8.cacheDir, opts.int8.formulation) : graph;
      session = await OnnxSession.open(run, { intraOpThreads: opts.intraOpThreads });
      if (!session.outputNames.includes('sentence_embedding'))
        throw new Error(`its graph has no sentence_embedding output (outputs: ${session.outputNames.join(', ')})`);
      const st = await readJson(path.join(folder, 'sentence_bert_config.json'));
      const maxTokens = typeof st?.max_seq_length === 'number' ? st.max_seq_length : DEFAULT_MAX_TOKENS;
      const revision = `${await modelRevision(folder)}${opts.int8 ? `+int8-${opts.int8.formulation}` : ''}`;
      const encoder = new SentenceEncoder(
        { id: path.basename(folder), revision },
        0,
        tokenizer,
        session,
        maxTokens,
        opts.maxBatch ?? 32,
      );
      const [probe] = await encoder.embed(['hello']);
      const norm = Math.hypot(...probe);
      if (!probe.every(Number.isFinite) || Math.abs(norm - 1) > 1e-3)
        throw new Error(`its embedding of a probe text is not a unit vector (norm ${norm})`);
      return new SentenceEncoder(encoder.model, probe.length, tokenizer, session, maxTokens, opts.maxBatch ?? 32);
    } catch (cause) {
      await session?.close();
      if (cause instanceof ModelLoadError) throw cause;
      throw new ModelLoadError(`the sentence encoder in ${folder} cannot be used: ${(cause as Error).message}`, {
        cause,
        hint: 'convert it again with `npm run models:encoder -- --force`',
      });
    }
  }

  /** Unit-length embeddings of `texts`, in order. */
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const out = new Array<Float32Array>(texts.length);
    // Similar lengths together: a batch is padded to its longest text.
    const order = texts.map((t, i) => ({ t, i })).sort((a, b) => a.t.length - b.t.length);
    for (let s = 0; s < order.length; s += this.maxBatch) {
      const chunk = order.slice(s, s + this.maxBatch);
      const vectors = await this.run(chunk.map((c) => c.t));
      chunk.forEach((c, k) => (out[c.i] = vectors[k]));
    }
    return out;
  }

  /** Each text's length in the encoder's tokens, special tokens included, without truncation. */
  tokenCounts(texts: readonly string[]): number[] {
    return texts.map((t) => this.tokenizer.encode(t).length);
  }

  private async run(texts: string[]): Promise<Float32Array[]> {
    const enc = this.tokenizer(texts, { padding: true, truncation: true, max_length: this.maxTokens }) as Record<
      string,
      { data: BigInt64Array; dims: number[] }
    >;
    const feed = (name: string): HostTensor => ({ type: 'int64', data: enc[name].data, dims: enc[name].dims });
    const ids = feed('input_ids');
    const types: HostTensor = enc.token_type_ids
      ? feed('token_type_ids')
      : { type: 'int64', data: new BigInt64Array(ids.data.length), dims: ids.dims };
    const result = await this.session.run(
      { input_ids: ids, attention_mask: feed('attention_mask'), token_type_ids: types },
      ['sentence_embedding'],
    );
    const { data, dims } = result.sentence_embedding;
    const d = dims[1];
    return texts.map((_, b) => (data as Float32Array).slice(b * d, (b + 1) * d));
  }

  /** Releases the session. */
  async close(): Promise<void> {
    await this.session.close();
  }
}

/** An optional JSON file of the model folder: undefined when absent, an error when unreadable. */
async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as Record<string, unknown>;
}
