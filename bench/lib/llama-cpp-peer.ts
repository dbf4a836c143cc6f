import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ASSISTANT_GGUF, ASSISTANT_WHEEL } from '../../src/models/assistant-model.js';
import { fetchWheel, sha256Of, unpackWheelMember } from '../../src/models/pip-wheel.js';
import { peakRssOf, timeAlone, type PeerResult, type PeerWorkload } from './peer-run.js';

const run = promisify(execFile);

/** llama.cpp as vendored in this sdist (its vendor/llama.cpp), built from source by the bench. */
export const LLAMA_CPP_SDIST = {
  spec: 'llama-cpp-python==0.3.36',
  file: 'llama_cpp_python-0.3.36.tar.gz',
  sha256: '832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e',
};
/** The formats measured: the shipped Q4_1, and F32 and Q8_0 requantized from it by llama.cpp's own tool. */
export type GgufFormat = 'F32' | 'Q8_0' | 'Q4_1';

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/**
 * CMake flags for this CPU: no `GGML_NATIVE` (on a Xeon with AMX, the native build segfaulted in
 * `ggml_backend_amx_mul_mat`), the vector extensions the CPU has, AMX off.
 */
async function cpuFlags(): Promise<string[]> {
  const flags = new Set((/^flags\s*:(.*)$/m.exec(await readFile('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(/\s+/));
  const on = (name: string, flag: string) => `-D${name}=${flags.has(flag) ? 'ON' : 'OFF'}`;
  return [
    '-DGGML_NATIVE=OFF',
    ...[
      ['GGML_AVX', 'avx'],
      ['GGML_AVX2', 'avx2'],
      ['GGML_FMA', 'fma'],
      ['GGML_F16C', 'f16c'],
      ['GGML_AVX_VNNI', 'avx_vnni'],
      ['GGML_AVX512', 'avx512f'],
      ['GGML_AVX512_VBMI', 'avx512vbmi'],
      ['GGML_AVX512_VNNI', 'avx512_vnni'],
      ['GGML_AVX512_BF16', 'avx512_bf16'],
    ].map(([name, flag]) => on(name, flag)),
    '-DGGML_AMX_TILE=OFF',
    '-DGGML_AMX_INT8=OFF',
    '-DGGML_AMX_BF16=OFF',
  ];
}

/**
 * Builds llama.cpp's `llama-server` and `llama-quantize` once into `cacheDir` (about 6 minutes on 2 cores), from
 * the pinned sdist fetched with pip, for this CPU's flags; returns the folder of the binaries.
 */
export async function ensureLlamaCpp(cacheDir: string, python: string): Promise<{ bin: string; cmake: string[] }> {
  const cmake = await cpuFlags();
  const key = createHash('sha256').update(cmake.join(' ')).digest('hex').slice(0, 12);
  const root = path.join(cacheDir, 'peers', `llama.cpp-0.3.36-${key}`);
  const bin = path.join(root, 'bin');
  if (await exists(path.join(bin, 'llama-server'))) return { bin, cmake };
  await mkdir(path.dirname(root), { recursive: true });
  const work = await mkdtemp(path.join(path.dirname(root), '.build-'));
  try {
    process.stderr.write(`building llama.cpp from ${LLAMA_CPP_SDIST.spec} (once, into ${root})…\n`);
    await run(python, ['-m', 'pip', 'download', LLAMA_CPP_SDIST.spec, '--no-binary', ':all:', '--no-deps', '-d', work]);
    const sdist = path.join(work, LLAMA_CPP_SDIST.file);
    const digest = await sha256Of(sdist);
    if (digest !== LLAMA_CPP_SDIST.sha256)
      throw new Error(`${LLAMA_CPP_SDIST.spec}: sha256 ${digest}, not the pinned one`);
    await run('tar', ['xzf', sdist, '-C', work]);
    const src = path.join(work, 'llama_cpp_python-0.3.36', 'vendor', 'llama.cpp');
    const build = path.join(work, 'build');
    const options = ['-DCMAKE_BUILD_TYPE=Release', '-DBUILD_SHARED_LIBS=OFF', '-DLLAMA_BUILD_TESTS=OFF'];
    const offline = ['-DLLAMA_USE_PREBUILT_UI=OFF', '-DLLAMA_OPENSSL=OFF', '-DLLAMA_CURL=OFF'];
    await run('cmake', ['-S', src, '-B', build, ...options, ...offline, ...cmake], { maxBuffer: 64 << 20 });
    const targets = ['--target', 'llama-server', 'llama-quantize'];
    await run('cmake', ['--build', build, '-j', String(os.cpus().length), ...targets], { maxBuffer: 256 << 20 });
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    await rename(path.join(build, 'bin'), bin);
    return { bin, cmake };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The assistant's GGUF as shipped (Q4_1), and requantized by llama.cpp to F32 and Q8_0, cached beside the build. */
export async function ensureGguf(bin: string, format: GgufFormat, python: string): Promise<string> {
  const dir = path.join(path.dirname(bin), 'gguf');
  const target = path.join(dir, `smollm2-135m-instruct.${format}.gguf`);
  if (await exists(target)) return target;
  await mkdir(dir, { recursive: true });
  const shipped = path.join(dir, 'smollm2-135m-instruct.Q4_1.gguf');
  if (!(await exists(shipped))) {
    const wheel = await fetchWheel(ASSISTANT_WHEEL, { python });
    const unpacked = await unpackWheelMember(wheel.file, ASSISTANT_GGUF, dir, python);
    await rename(unpacked, shipped);
    await rm(path.join(dir, ASSISTANT_GGUF.split('/')[0]), { recursive: true, force: true });
  }
  if (format !== 'Q4_1')
    await run(path.join(bin, 'llama-quantize'), ['--allow-requantize', shipped, `${target}.part`, format]).then(() =>
      rename(`${target}.part`, target),
    );
  return target;
}

/** The server's answer to one completion request (the fields read here). */
interface Completion {
  tokens: number[];
  timings: { predicted_n: number };
}

/**
 * llama.cpp's own server (`llama-server`, continuous batching over one slot per request) on `gguf`: the workload's
 * requests sent at once over loopback HTTP, greedy, end-of-text ignored until `maxNewTokens`, prompt caching off.
 */
export async function runLlamaServer(bin: string, gguf: string, w: PeerWorkload, port: number): Promise<PeerResult> {
  const longest = Math.max(...w.prompts.map((p) => p.length)) + w.maxNewTokens + 16;
  const slots = w.prompts.length;
  const args = ['-m', gguf, '-t', String(w.threads), '-tb', String(w.threads), '-np', String(slots)];
  args.push('-c', String(slots * longest), '-b', '2048', '-ub', '512', '-cram', '0', '--no-webui');
  args.push('--host', '127.0.0.1', '--port', String(port));
  const server = spawn(path.join(bin, 'llama-server'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, server, () => log);
    const complete = async (prompt: number[], n: number) => {
      const body = { prompt, n_predict: n, temperature: 0, top_k: 1, ignore_eos: true, cache_prompt: false };
      const res = await fetch(`${url}/completion`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...body, return_tokens: true }),
      });
      if (!res.ok) throw new Error(`llama-server answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as Completion;
    };
    const single = w.single;
    const alone = single
      ? await timeAlone((n) => complete(single, n).then((c) => c.timings.predicted_n), w.maxNewTokens)
      : undefined;
    const results: PeerResult['results'] = [];
    const t0 = performance.now();
    await Promise.all(
      w.prompts.map((p, i) =>
        complete(p, w.maxNewTokens).then((c) => {
          results[i] = { generated: c.tokens.length, first: c.tokens[0], ms: performance.now() - t0 };
        }),
      ),
    );
    const wallMs = performance.now() - t0;
    return {
      results,
      wallMs,
      single: alone,
      peakRssMiB: await peakRssOf(server.pid!),
    };
  } finally {
    // Gone before the next configuration starts, so that no two runs share the cores.
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.once('exit', resolve));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    }
  }
}

async function waitHealthy(url: string, server: ReturnType<typeof spawn>, log: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`llama-server exited ${server.exitCode}: ${log()}`);
    const ok = await fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`llama-server did not become healthy in 120 s: ${log()}`);
}
