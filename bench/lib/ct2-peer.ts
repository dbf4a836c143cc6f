import { execFileSync } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { PeerResult, PeerWorkload } from './peer-run.js';

export const CT2_VERSION = '4.8.5';

/** Installs CTranslate2 (and onnx, which its converter here reads weights with) into the bench's virtualenv once. */
export function ensureCt2(python: string): void {
  try {
    execFileSync(python, ['-c', `import ctranslate2, onnx; assert ctranslate2.__version__ == '${CT2_VERSION}'`], {
      stdio: 'ignore',
    });
  } catch {
    process.stderr.write(`installing ctranslate2 ${CT2_VERSION}…\n`);
    execFileSync(python, ['-m', 'pip', 'install', '-q', `ctranslate2==${CT2_VERSION}`, 'onnx==1.23.2'], {
      stdio: 'inherit',
    });
  }
}

/** The model folder converted once for CTranslate2 by its own spec API (bench/tools/ct2_convert.py) into `out`. */
export async function ensureCt2Model(python: string, modelDir: string, out: string): Promise<string> {
  const done = await access(path.join(out, 'model.bin')).then(
    () => true,
    () => false,
  );
  if (!done) {
    process.stderr.write(`converting ${modelDir} for CTranslate2…\n`);
    execFileSync(python, [path.resolve('bench/tools/ct2_convert.py'), modelDir, out], { stdio: 'inherit' });
  }
  return out;
}

/** One CTranslate2 run (bench/tools/ct2_generate.py) in a process of its own; all requests in one batch call. */
export function runCt2(
  python: string,
  model: string,
  computeType: 'float32' | 'int8',
  maxBatchSize: number,
  w: PeerWorkload,
): PeerResult {
  const out = JSON.parse(
    execFileSync(python, [path.resolve('bench/tools/ct2_generate.py')], {
      input: JSON.stringify({ model, computeType, maxBatchSize, ...w }),
      maxBuffer: 64 << 20,
    }).toString(),
  ) as Omit<PeerResult, 'results'> & { results: Array<{ ids: number[]; ms: number }> };
  return {
    ...out,
    results: out.results.map((r) => ({ generated: r.ids.length, first: r.ids[0], ms: r.ms })),
  };
}
