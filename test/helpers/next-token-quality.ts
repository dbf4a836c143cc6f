import * as ort from 'onnxruntime-node';
import type { DecoderEngine } from '../../src/inference/decoder-engine.js';

/** How close a model's next-token distributions come to a reference's over the same teacher-forced tokens. */
export interface Agreement {
  steps: number;
  /** Mean KL(reference ‖ model), in nats. */
  meanKl: number;
  /** Share of steps where both put the same token first. */
  top1: number;
}

function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** Index of the largest value. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** Accumulates KL and top-1 agreement step by step. */
export class AgreementMeter {
  private kl = 0;
  private agree = 0;
  private steps = 0;

  /** Adds one step: the reference's logits and the model's. */
  add(reference: ArrayLike<number>, model: ArrayLike<number>): void {
    const p = softmax(reference);
    const q = softmax(model);
    for (let i = 0; i < p.length; i++) if (p[i] > 0) this.kl += p[i] * Math.log(p[i] / Math.max(q[i], 1e-30));
    if (argmax(reference) === argmax(model)) this.agree++;
    this.steps++;
  }

  get result(): Agreement {
    return { steps: this.steps, meanKl: this.kl / this.steps, top1: this.agree / this.steps };
  }
}

/** The engine's greedy continuation of `prompt` (`steps` tokens). */
export async function greedyContinuation(engine: DecoderEngine, prompt: number[], steps: number): Promise<number[]> {
  const out: number[] = [];
  let logits = (await engine.prefill([{ handle: 1, tokens: prompt, slots: prompt.length + steps + 1 }]))[0];
  for (let s = 0; s < steps; s++) {
    out.push(argmax(logits));
    logits = (await engine.decode(new Map([[1, out[s]]]))).get(1)!;
  }
  engine.release(1);
  return out;
}

/** The engine's next-token logits after the prompt and after each token of `continuation`. */
export async function engineTeacherForced(
  engine: DecoderEngine,
  prompt: number[],
  continuation: number[],
): Promise<Float32Array[]> {
  const out = [
    (await engine.prefill([{ handle: 1, tokens: prompt, slots: prompt.length + continuation.length + 1 }]))[0],
  ];
  for (const token of continuation) out.push((await engine.decode(new Map([[1, token]]))).get(1)!);
  engine.release(1);
  return out;
}

/**
 * The same logits from a standard text-generation export run as it is (one forward pass over prompt and
 * continuation, empty past), for exports the engine does not run as they are: a quantize_dynamic model with its int8
 * activations, as transformers.js's users run it.
 */
export async function exportTeacherForced(
  session: ort.InferenceSession,
  prompt: number[],
  continuation: number[],
  layers: number,
  heads: number,
  headSize: number,
): Promise<Float32Array[]> {
  const tokens = [...prompt, ...continuation];
  const S = tokens.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, S]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(S).fill(1n), [1, S]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map((_, i) => BigInt(i))), [1, S]),
  };
  for (let i = 0; i < layers; i++)
    for (const kind of ['key', 'value'])
      feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, headSize]);
  const logits = (await session.run(feeds)).logits;
  const V = logits.dims[2];
  const data = logits.data as Float32Array;
  return Array.from({ length: continuation.length + 1 }, (_, k) =>
    data.slice((prompt.length - 1 + k) * V, (prompt.length + k) * V),
  );
}
