import * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../errors/errors.js';

/** Execution providers AVA can ask ONNX Runtime for. */
export type ExecutionProvider = 'cpu' | 'cuda';

/** Options of one session. */
export interface SessionOptions {
  /** `cpu` (default) or `cuda` (needs onnxruntime-node's CUDA libraries; see docs/gpu.md). */
  executionProvider?: ExecutionProvider;
  /** Intra-op threads; 0 or undefined lets the runtime choose. */
  intraOpThreads?: number;
}

/** A tensor as plain data, so that callers never touch the runtime's types. */
export interface HostTensor {
  type: 'float32' | 'int64' | 'int32' | 'uint8';
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array;
  dims: readonly number[];
}

/**
 * The one module that imports onnxruntime-node: a thin wrapper over an inference session that speaks in plain
 * typed arrays. Everything else (engine, tests, benchmarks) goes through it, so swapping or upgrading the runtime
 * touches one file.
 */
export class OnnxSession {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** Opens a model (a file path, or the model's bytes) with the given execution provider and thread count. */
  static async open(model: string | Uint8Array, opts: SessionOptions = {}): Promise<OnnxSession> {
    try {
      const options: ort.InferenceSession.SessionOptions = {
        executionProviders: [opts.executionProvider ?? 'cpu'],
        graphOptimizationLevel: 'all',
        // The binding refuses an undefined thread count; leave the key out to let the runtime choose.
        ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
      };
      const session =
        typeof model === 'string'
          ? await ort.InferenceSession.create(model, options)
          : await ort.InferenceSession.create(model, options);
      return new OnnxSession(session);
    } catch (cause) {
      const what = typeof model === 'string' ? model : `a ${model.byteLength}-byte model`;
      throw new ModelLoadError(`ONNX Runtime could not load ${what}: ${(cause as Error).message}`, { cause });
    }
  }

  /** Graph input names, in graph order. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Graph output names, in graph order. */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the graph on `feeds`, fetching only `fetches` (all outputs when omitted). */
  async run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const results = fetches ? await this.session.run(ortFeeds, fetches as string[]) : await this.session.run(ortFeeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(results)) {
      out[name] = { type: t.type as HostTensor['type'], data: t.data as HostTensor['data'], dims: t.dims };
    }
    return out;
  }

  /** Releases the native session. */
  async close(): Promise<void> {
    await this.session.release();
  }
}
