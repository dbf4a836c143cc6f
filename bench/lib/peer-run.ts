import { readFile } from 'node:fs/promises';

/** The work every peer is given: the same token ids, greedy, exactly `maxNewTokens` new tokens each, same threads. */
export interface PeerWorkload {
  /** Requests sent at once. */
  prompts: number[][];
  /** The request timed alone (time to first token, decode rate), or none. */
  single?: number[];
  maxNewTokens: number;
  threads: number;
}

/** What one peer configuration measured on a {@link PeerWorkload}. */
export interface PeerResult {
  /** Per request: tokens generated, the first of them (when the peer returns ids), and ms from the start to its end. */
  results: Array<{ generated: number; first?: number; ms: number }>;
  wallMs: number;
  /** The request alone: ms to its first token and its decode rate after it (medians of 3); absent without one. */
  single?: { ttftMs: number; decodeTokS: number };
  /** The process's peak resident memory (VmHWM), loading included. */
  peakRssMiB: number;
}

/** One configuration's run, labelled. */
export interface PeerRun extends PeerResult {
  peer: 'AVA engine' | 'llama.cpp' | 'CTranslate2';
  /** Weights and arithmetic, as the peer names them (`fp32`, `Q8_0`, `int8`…). */
  format: string;
  /** The precision class it is compared in. */
  precision: 'fp32' | 'int8' | '4-bit';
}

/** Generated tokens per second over the whole run. */
export function throughput(r: PeerResult): number {
  return r.results.reduce((n, x) => n + x.generated, 0) / (r.wallMs / 1000);
}

/** A process's peak resident memory in MiB, from /proc (Linux). */
export async function peakRssOf(pid: number | 'self'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status);
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb[1]) / 1024;
}

/**
 * Times one request alone: its first token (median of 3 runs of one token) and its decode rate over `maxNewTokens`
 * (median of 3 runs), after a warm-up. `generate(n)` runs the request for n new tokens and says how many it made.
 */
export async function timeAlone(
  generate: (n: number) => Promise<number>,
  maxNewTokens: number,
): Promise<{ ttftMs: number; decodeTokS: number }> {
  const timed = async (n: number) => {
    const t0 = performance.now();
    const generated = await generate(n);
    return { ms: performance.now() - t0, generated };
  };
  await timed(2);
  const ttftMs = median([(await timed(1)).ms, (await timed(1)).ms, (await timed(1)).ms]);
  const rates = [];
  for (let k = 0; k < 3; k++) {
    const full = await timed(maxNewTokens);
    rates.push((full.generated - 1) / ((full.ms - ttftMs) / 1000));
  }
  return { ttftMs, decodeTokS: median(rates) };
}

/** The median of a few values. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
