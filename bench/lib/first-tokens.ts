import { DecoderEngine } from '../../src/inference/decoder-engine.js';
import type { PeerRun } from './peer-run.js';

/** The engine's first greedy token of each prompt, with the margin between its top two logits. */
export interface FirstToken {
  token: number;
  margin: number;
}

/**
 * Prefills every prompt on the engine at `precision` (one call, equal lengths share it) and reads the first token,
 * end-of-text excluded as the benchmark's runs exclude it.
 */
export async function engineFirstTokens(
  dir: string,
  precision: 'fp32' | 'int8',
  prompts: readonly number[][],
  threads: number,
  eosTokenId: number,
): Promise<FirstToken[]> {
  // The cache rounds each row up to a multiple of 64 slots.
  const maxCachedTokens = prompts.reduce((n, p) => n + p.length + 65, 0);
  const engine = await DecoderEngine.load(dir, { intraOpThreads: threads, maxCachedTokens, precision });
  try {
    const logits = await engine.prefill(prompts.map((p, i) => ({ handle: i, tokens: p, slots: p.length + 1 })));
    return logits.map((l) => {
      l[eosTokenId] = -Infinity;
      let [best, second] = l[0] >= l[1] ? [0, 1] : [1, 0];
      for (let t = 2; t < l.length; t++)
        if (l[t] > l[best]) [best, second] = [t, best];
        else if (l[t] > l[second]) second = t;
      return { token: best, margin: l[best] - l[second] };
    });
  } finally {
    await engine.close();
  }
}

/** How a peer's first tokens compare with the engine's: equal, different where the engine's top two are within `noise`, different. */
export interface Agreement {
  peer: string;
  agree: number;
  knifeEdge: number;
  differ: number[];
}

export function agreement(engine: readonly FirstToken[], run: PeerRun, noise: number): Agreement {
  const out: Agreement = { peer: `${run.peer} ${run.format}`, agree: 0, knifeEdge: 0, differ: [] };
  run.results.forEach((r, i) => {
    if (r.first === engine[i].token) out.agree++;
    else if (engine[i].margin <= noise) out.knifeEdge++;
    else out.differ.push(i);
  });
  return out;
}
