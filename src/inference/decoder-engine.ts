import type { WeightPrecision } from '../models/gpt2-graph.js';
import { engineShapeOf, ensureEngineGraph, readArchitecture, type EngineShape } from './engine-graph-converter.js';
import { chooseBlockInt8, chooseInt8Kernel, type Int8KernelSetting } from './int8-kernel.js';
import { KvCache } from './kv-cache.js';
import { OnnxSession, type HostTensor, type SessionOptions } from './onnx-session.js';

/** How an engine computes: float32, or int8 with the integer kernel chosen (and proven exact) for this CPU. */
export type EngineNumerics =
  { precision: 'fp32' } | { precision: 'int8'; kernel: 'u8s8' | 'u8u8' | 'block-q8'; cpu: string; reason: string };

/** One sequence to prefill: its prompt tokens and the cache slots it will need (prompt + new tokens). */
export interface PrefillEntry {
  handle: number;
  tokens: readonly number[];
  slots: number;
}

const i64 = (data: BigInt64Array, dims: number[]): HostTensor => ({ type: 'int64', data, dims });

/** Most tokens in one prefill call; bounds the memory of its outputs. */
const PREFILL_MAX_TOKENS = 4096;
/**
 * A longer prompt is prefilled in chunks of this many tokens (by default), each attending to the cache the earlier
 * ones filled: the score matrices stay [chunk, prompt] instead of [prompt, prompt], and the masked half is not computed.
 */
const PREFILL_CHUNK = 256;

/**
 * A decoder-only model (GPT-2 or the Llama family) on its engine graph: prefill adds sequences to the running batch,
 * decode advances every live sequence by one token. It deals in tensors and cache rows; which sequences run is the scheduler's business. Each step fetches only
 * the last-position logits and the new tokens' keys and values, which are written into the {@link KvCache}.
 */
export class DecoderEngine {
  private readonly cache: KvCache;
  private readonly rowOf = new Map<number, number>();
  private readonly handleAt: number[] = [];
  private readonly fetches: string[];

  private constructor(
    private readonly session: OnnxSession,
    /** Layers, heads, head size and vocabulary of the model. */
    readonly shape: EngineShape,
    /** Revision of the source graph (see `modelRevision`). */
    readonly revision: string,
    maxCachedTokens: number,
    /** The linear layers' precision and, for int8, the integer kernel chosen for this CPU and why. */
    readonly numerics: EngineNumerics,
    private readonly prefillChunk: number,
  ) {
    this.cache = new KvCache(shape.nLayer, shape.nKvHead, shape.headDim, maxCachedTokens);
    this.fetches = ['logits'];
    for (let i = 0; i < shape.nLayer; i++) this.fetches.push(`new.${i}.key`, `new.${i}.value`);
  }

  /**
   * Loads a model directory, converting its graph to the engine form first when needed (into `cacheDir`, default
   * {@link ensureEngineGraph}'s), its linear layers in `precision` (float32 by default, or int8). An int8 engine
   * takes the integer kernel `int8Kernel` asks for (default `auto`: chosen from the CPU and proven exact on it; see
   * {@link chooseInt8Kernel}). The KV cache never allocates more than `maxCachedTokens` slots.
   */
  static async load(
    modelDir: string,
    opts: SessionOptions & {
      cacheDir?: string;
      maxCachedTokens: number;
      precision?: WeightPrecision;
      int8Kernel?: Int8KernelSetting;
      /** Tokens per prefill chunk (default 256). */
      prefillChunk?: number;
    },
  ): Promise<DecoderEngine> {
    const arch = await readArchitecture(modelDir);
    const precision = opts.precision ?? 'fp32';
    // GPT-2's int8 graph runs per-token MatMulInteger products (u8s8 or u8u8); the Llama family's runs int8 blocks.
    const numerics: EngineNumerics =
      precision === 'fp32'
        ? { precision }
        : arch.family === 'llama'
          ? { precision, ...(await chooseBlockInt8()) }
          : await chooseInt8Kernel(opts.int8Kernel ?? 'auto').then((c) => ({
              precision,
              kernel: c.formulation,
              cpu: c.cpu,
              reason: c.reason,
            }));
    const formulation = numerics.precision === 'int8' && numerics.kernel !== 'block-q8' ? numerics.kernel : undefined;
    const graph = await ensureEngineGraph(modelDir, opts.cacheDir, precision, formulation);
    const session = await OnnxSession.open(graph.path, opts);
    const chunk = opts.prefillChunk ?? PREFILL_CHUNK;
    return new DecoderEngine(session, engineShapeOf(arch), graph.sourceRevision, opts.maxCachedTokens, numerics, chunk);
  }

  /** Live sequences. */
  get size(): number {
    return this.cache.rows;
  }

  /** Cache statistics, for memory accounting and tests. */
  get cacheStats(): {
    rows: number;
    slots: number;
    filledTokens: number;
    allocatedBytes: number;
    peakBytes: number;
    bytesPerToken: number;
  } {
    const c = this.cache;
    return {
      rows: c.rows,
      slots: c.slots,
      filledTokens: c.filledTokens,
      allocatedBytes: c.allocatedBytes,
      peakBytes: c.peakBytes,
      bytesPerToken: c.bytesPerToken,
    };
  }

  /** Cache slots that sequences with these budgets take (the scheduler admits against it). */
  footprint(budgets: readonly number[]): number {
    return this.cache.footprint(budgets);
  }

  /**
   * Runs the prompts of new sequences and adds them to the running batch; returns each one's next-token logits.
   * Only prompts of the same length share a call, so no row is padded: padding shifts where a row's tokens fall in
   * the kernels' vector lanes, its sums then round differently, and on a trained model the int8 engine's per-token
   * quantization turned that into a different greedy token (SmolLM2, one prompt of four). Prefill is compute-bound
   * from a few dozen tokens on, so grouping buys little beyond equal lengths. A prompt is cut into chunks by its
   * length alone, so it is computed the same way in any batch.
   */
  async prefill(entries: readonly PrefillEntry[]): Promise<Float32Array[]> {
    const order = entries.map((_, i) => i).sort((a, b) => entries[a].tokens.length - entries[b].tokens.length);
    this.cache.reserve(this.cache.rows + entries.length, Math.max(...entries.map((e) => e.slots)));
    const logits: Float32Array[] = new Array(entries.length);
    let start = 0;
    while (start < order.length) {
      const length = entries[order[start]].tokens.length;
      const chunk = Math.min(length, this.prefillChunk);
      let end = start + 1;
      while (
        end < order.length &&
        entries[order[end]].tokens.length === length &&
        chunk * (end - start + 1) <= PREFILL_MAX_TOKENS
      )
        end++;
      const group = order.slice(start, end);
      try {
        const out = await this.prefillGroup(group.map((i) => entries[i]));
        group.forEach((i, k) => (logits[i] = out[k]));
      } catch (err) {
        // All or nothing: rows already added by earlier groups of this call would otherwise outlive the failure.
        for (const e of entries) this.release(e.handle);
        throw err;
      }
      start = end;
    }
    return logits;
  }

  /** Prefills prompts of one length: the first chunk on an empty cache, each later one on the rows it filled. */
  private async prefillGroup(entries: readonly PrefillEntry[]): Promise<Float32Array[]> {
    const length = entries[0].tokens.length;
    const firstChunk = Math.min(length, this.prefillChunk);
    let logits = await this.prefillFirst(entries, firstChunk);
    const first = this.rowOf.get(entries[0].handle)!; // the group's rows were added last, in order
    for (let done = firstChunk; done < length; done += this.prefillChunk) {
      const chunk = entries.map((e) => e.tokens.slice(done, done + this.prefillChunk));
      const out = await this.runOnCache(first, chunk);
      const { keys, values } = this.newKv(out);
      this.cache.appendTokens(keys, values, first, entries.length, chunk[0].length);
      logits = this.splitLogits(out.logits, entries.length);
    }
    return logits;
  }

  private async prefillFirst(entries: readonly PrefillEntry[], T: number): Promise<Float32Array[]> {
    const B = entries.length;
    const ids = new BigInt64Array(B * T);
    const mask = new BigInt64Array(B * T).fill(1n);
    const pos = new BigInt64Array(B * T);
    entries.forEach((e, b) => {
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = BigInt(e.tokens[t]);
        pos[b * T + t] = BigInt(t);
      }
    });
    const feeds: Record<string, HostTensor> = {
      input_ids: i64(ids, [B, T]),
      attention_mask: i64(mask, [B, T]),
      position_ids: i64(pos, [B, T]),
    };
    const empty: HostTensor = {
      type: 'float32',
      data: new Float32Array(0),
      dims: [B, this.shape.nKvHead, 0, this.shape.headDim],
    };
    for (let i = 0; i < this.shape.nLayer; i++) feeds[`cache.${i}.key`] = feeds[`cache.${i}.value`] = empty;
    const out = await this.session.run(feeds, this.fetches);
    const { keys, values } = this.newKv(out);
    entries.forEach((e, b) => {
      const row = this.cache.addRow(keys, values, b, T, 0, T, e.slots);
      this.rowOf.set(e.handle, row);
      this.handleAt[row] = e.handle;
    });
    return this.splitLogits(out.logits, B);
  }

  /**
   * Advances every live sequence by one token: `tokens` maps each live handle to its newest token. Returns the
   * next-token logits per handle.
   */
  async decode(tokens: ReadonlyMap<number, number>): Promise<Map<number, Float32Array>> {
    const next = this.handleAt.slice(0, this.cache.rows).map((handle) => {
      const token = tokens.get(handle);
      if (token === undefined) throw new Error(`decode: no token for live sequence ${handle}`);
      return [token];
    });
    const out = await this.runOnCache(0, next);
    const { keys, values } = this.newKv(out);
    this.cache.appendToken(keys, values);
    const logits = this.splitLogits(out.logits, next.length);
    return new Map(logits.map((l, r) => [this.handleAt[r], l]));
  }

  /**
   * Runs `tokens` (the same count for each row) on the cache rows from `first` on, each after its filled slots; the
   * caller writes the new keys and values into the cache.
   */
  private async runOnCache(first: number, tokens: readonly (readonly number[])[]) {
    const [B, T, P] = [tokens.length, tokens[0].length, this.cache.slots];
    const ids = new BigInt64Array(B * T);
    const pos = new BigInt64Array(B * T);
    const mask = new BigInt64Array(B * (P + T));
    for (let b = 0; b < B; b++) {
      const len = this.cache.lengths[first + b];
      for (let t = 0; t < T; t++) {
        ids[b * T + t] = BigInt(tokens[b][t]);
        pos[b * T + t] = BigInt(len + t);
      }
      mask.fill(1n, b * (P + T), b * (P + T) + len);
      mask.fill(1n, b * (P + T) + P, (b + 1) * (P + T));
    }
    const feeds: Record<string, HostTensor> = {
      input_ids: i64(ids, [B, T]),
      attention_mask: i64(mask, [B, P + T]),
      position_ids: i64(pos, [B, T]),
    };
    const dims = [B, this.shape.nKvHead, P, this.shape.headDim];
    for (let i = 0; i < this.shape.nLayer; i++) {
      feeds[`cache.${i}.key`] = { type: 'float32', data: this.cache.keysOf(i, first, B), dims };
      feeds[`cache.${i}.value`] = { type: 'float32', data: this.cache.valuesOf(i, first, B), dims };
    }
    return this.session.run(feeds, this.fetches);
  }

  /** Drops a finished sequence's row from the cache at once. */
  release(handle: number): void {
    const row = this.rowOf.get(handle);
    if (row === undefined) return;
    this.rowOf.delete(handle);
    const moved = this.cache.removeRow(row);
    if (moved >= 0) {
      const movedHandle = this.handleAt[moved];
      this.handleAt[row] = movedHandle;
      this.rowOf.set(movedHandle, row);
    }
    this.handleAt.length = this.cache.rows;
  }

  /** Releases the native session. */
  async close(): Promise<void> {
    await this.session.close();
  }

  private newKv(out: Record<string, HostTensor>) {
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let i = 0; i < this.shape.nLayer; i++) {
      keys.push(out[`new.${i}.key`].data as Float32Array);
      values.push(out[`new.${i}.value`].data as Float32Array);
    }
    return { keys, values };
  }

  private splitLogits(logits: HostTensor, B: number): Float32Array[] {
    const V = this.shape.vocabSize;
    const data = logits.data as Float32Array;
    return Array.from({ length: B }, (_, b) => data.subarray(b * V, (b + 1) * V));
  }
}
