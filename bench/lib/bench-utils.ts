import { mkdir, writeFile, access } from 'node:fs/promises';
import { MongoClient } from 'mongodb';
import os from 'node:os';
import path from 'node:path';
import { forgeModel } from '../../src/models/model-forge.js';
import { SingleBar, Presets } from 'cli-progress';

/** Where benchmarks keep the large forged models (gitignored). */
export const BENCH_MODELS_DIR = path.resolve('.cache/models');

/** Forges a preset into the bench model folder when missing, with a progress bar. */
export async function ensureForged(preset: string): Promise<string> {
  const dir = path.join(BENCH_MODELS_DIR, preset);
  try {
    await access(path.join(dir, 'onnx/model.onnx'));
    return dir;
  } catch {
    const bar = new SingleBar(
      { format: `forging ${preset} [{bar}] {percentage}%`, stream: process.stderr },
      Presets.shades_classic,
    );
    let started = false;
    await forgeModel({
      preset,
      outDir: dir,
      onProgress: (done, total) => {
        if (!started) {
          bar.start(total, 0);
          started = true;
        }
        bar.update(done);
      },
    });
    bar.stop();
    return dir;
  }
}

/** Samples the process's resident memory while `fn` runs and returns its result with the peak, in MiB. */
export async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ value: T; peakRssMiB: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const value = await fn();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { value, peakRssMiB: peak / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

/** The q-quantile (0–1) of `values`, nearest rank. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** The machine a result was measured on. */
export function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** Writes `bench/results/<name>-<timestamp>.json` and returns its path. */
export async function writeResult(name: string, result: unknown): Promise<string> {
  const dir = path.resolve('bench/results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/** Drops a benchmark's database. */
export async function dropDatabase(url: string, name: string): Promise<void> {
  const client = await MongoClient.connect(url);
  await client.db(name).dropDatabase();
  await client.close();
}
