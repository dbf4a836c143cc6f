/**
 * The AVA engine as one `bench:peers` run in a process of its own (so that its peak memory is its own): reads
 * `{ model, precision, workload }` (see bench/lib/peer-run.ts) as JSON on stdin, generates through
 * {@link EngineGenerator} as a worker does (continuous batching, all requests submitted at once), and writes a
 * {@link PeerResult} as JSON on stdout.
 */
import { EngineGenerator } from '../../src/generation/engine-generator.js';
import { peakRssOf, timeAlone, type PeerResult, type PeerWorkload } from '../lib/peer-run.js';

const input = JSON.parse(await new Response(process.stdin as unknown as ReadableStream).text()) as {
  model: string;
  precision: 'fp32' | 'int8';
  workload: PeerWorkload;
};
const { prompts, maxNewTokens, threads } = input.workload;
const longest = Math.max(...prompts.map((p) => p.length)) + maxNewTokens;
const generator = await EngineGenerator.load({
  id: 'peer',
  dir: input.model,
  intraOpThreads: threads,
  maxBatchSize: prompts.length,
  // The cache rounds each row up to a multiple of 64 slots.
  maxCachedTokens: prompts.length * (longest + 64),
  precision: input.precision,
});
const single = input.workload.single;
const alone = single
  ? await timeAlone(
      (n) => generator.stream({ promptIds: single, maxNewTokens: n, minNewTokens: n }).then((o) => o.generatedTokens),
      maxNewTokens,
    )
  : undefined;
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
  single: alone,
  peakRssMiB: await peakRssOf('self'),
};
process.stdout.write(JSON.stringify(result));
