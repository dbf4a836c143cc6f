/**
 * The AVA engine as one `bench:peers` run in a process of its own (so that its peak memory is its own): reads
 * `{ model, precision, workload }` (see bench/lib/peer-run.ts) as JSON on stdin, generates through
 * {@link EngineGenerator} as a worker does (continuous batching, all requests submitted at once), and writes a
 * {@link PeerResult} as JSON on stdout.
 */
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { median, peakRssOf, type PeerResult, type PeerWorkload } from '../lib/peer-run.js';

const input = JSON.parse(await new Response(process.stdin as unknown as ReadableStream).text()) as {
  model: string;
  precision: 'fp32' | 'int8';
  workload: PeerWorkload;
};
const { prompts, single, maxNewTokens, threads } = input.workload;
const longest = Math.max(single.length, ...prompts.map((p) => p.length)) + maxNewTokens;
const generator = await EngineGenerator.load({
  id: 'peer',
  dir: input.model,
  intraOpThreads: threads,
  maxBatchSize: prompts.length,
  // The cache rounds each row up to a multiple of 64 slots.
  maxCachedTokens: prompts.length * (longest + 64),
  precision: input.precision,
});
const alone = async (n: number) => {
  const t0 = performance.now();
  const out = await generator.stream({ promptIds: single, maxNewTokens: n, minNewTokens: n });
  return { ms: performance.now() - t0, generated: out.generatedTokens };
};
await alone(2);
const ttftMs = median([(await alone(1)).ms, (await alone(1)).ms, (await alone(1)).ms]);
const full = await alone(maxNewTokens);
const results: PeerResult['results'] = [];
const t0 = performance.now();
await Promise.all(
  prompts.map((promptIds, i) =>
    generator.stream({ promptIds, maxNewTokens, minNewTokens: maxNewTokens }).then((o) => {
      results[i] = { generated: o.generatedTokens, ms: performance.now() - t0 };
    }),
  ),
);
const wallMs = performance.now() - t0;
await generator.close();
const result: PeerResult = {
  results,
  wallMs,
  single: { ttftMs, decodeTokS: (full.generated - 1) / ((full.ms - ttftMs) / 1000) },
  peakRssMiB: await peakRssOf('self'),
};
process.stdout.write(JSON.stringify(result));
