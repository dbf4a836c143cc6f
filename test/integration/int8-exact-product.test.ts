import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCpuFeatures, u8s8IsExact } from '../../src/inference/cpu-features.js';
import { DecoderEngine } from '../../src/inference/decoder-engine.js';
import { exactProduct, probeInt8Formulation, probeOperands } from '../../src/inference/int8-probe.js';
import { chooseInt8Kernel } from '../../src/inference/int8-kernel.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { TINY_MODEL_DIR } from '../helpers/paths.js';
import { engineTeacherForced, greedyContinuation } from '../helpers/next-token-quality.js';

const cpu = readCpuFeatures();
const u8s8 = u8s8IsExact(cpu);
const u8s8Probe = await probeInt8Formulation('u8s8');
/** `saturating` or `exact`: what the u8·s8 probe must find on this CPU, when a run knows it (CI under qemu). */
const EXPECTED_U8S8 = process.env.AVA_TEST_EXPECT_U8S8 as 'saturating' | 'exact' | undefined;

let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'ava-int8-exact-'));
  console.info(`CPU: ${cpu.model || cpu.arch} (${u8s8.reason}); u8s8 probe: largest error ${u8s8Probe.worstError}`);
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('the int8 products are exact on the CPU the tests run on', () => {
  it('the probe’s operands reach the worst case: pairs of 255 · ±127 that a saturating kernel would clip', () => {
    const { a, w, K, N } = probeOperands();
    expect(Math.min(...a)).toBe(1);
    expect(Math.max(...a)).toBe(255);
    expect(Math.min(...w)).toBe(-127);
    expect(Math.max(...w)).toBe(127);
    // Row 0 is all 255 and column 0 all 127: every raw pair is 2 · 255 · 127 = 64,770 > 32,767.
    expect(2 * a[0] * w[0]).toBeGreaterThan(32_767);
    expect(exactProduct(a, w, 1, K, N)[0]).toBe(K * 127 * 127);
  });

  it('u8u8 equals the exact integer product at every row count (exact on every CPU)', async () => {
    expect(await probeInt8Formulation('u8u8')).toEqual({ formulation: 'u8u8', exact: true, worstError: 0 });
  });

  it('the kernel chosen for this CPU (auto) equals the exact integer product', async () => {
    const choice = await chooseInt8Kernel('auto');
    console.info(`int8 kernel chosen: ${choice.formulation} (${choice.reason})`);
    expect(await probeInt8Formulation(choice.formulation)).toEqual({
      formulation: choice.formulation,
      exact: true,
      worstError: 0,
    });
  });

  it.skipIf(u8s8Probe.exact)(
    'where u8s8 is not exact (no VNNI, whatever the flags the OS reports say), auto takes u8u8 and an explicit u8s8 is refused',
    async () => {
      expect((await chooseInt8Kernel('auto')).formulation).toBe('u8u8');
      await expect(chooseInt8Kernel('u8s8')).rejects.toMatchObject({ code: 'ERR_MODEL_LOAD' });
    },
  );

  // CI runs these files again under qemu's AVX2-only CPU model (scripts/test.sh) and says which kernel it must find:
  // there the probe has to refuse the saturating u8·s8 kernel although /proc/cpuinfo shows the host's VNNI.
  it.runIf(EXPECTED_U8S8)(`finds u8s8 ${EXPECTED_U8S8} on this CPU, as the run was told to expect`, () => {
    expect(u8s8Probe.exact).toBe(EXPECTED_U8S8 === 'exact');
  });

  it.skipIf(!u8s8Probe.exact)(
    'u8s8 and u8u8 engines give the same logits, step for step (only where u8s8 is exact)',
    async () => {
      const tokenizer = await TextTokenizer.load(TINY_MODEL_DIR);
      const load = (int8Kernel: 'u8s8' | 'u8u8') =>
        DecoderEngine.load(TINY_MODEL_DIR, {
          intraOpThreads: 1,
          maxCachedTokens: 1024,
          cacheDir,
          precision: 'int8',
          int8Kernel,
        });
      const [signed, unsigned] = [await load('u8s8'), await load('u8u8')];
      try {
        expect([signed.numerics, unsigned.numerics]).toMatchObject([{ kernel: 'u8s8' }, { kernel: 'u8u8' }]);
        const prompt = tokenizer.encode('Where is my order 1234? It has been two weeks.');
        const continuation = await greedyContinuation(unsigned, prompt, 8);
        const [a, b] = [
          await engineTeacherForced(signed, prompt, continuation),
          await engineTeacherForced(unsigned, prompt, continuation),
        ];
        let worst = 0;
        for (let s = 0; s < a.length; s++)
          for (let v = 0; v < a[s].length; v++) worst = Math.max(worst, Math.abs(a[s][v] - b[s][v]));
        // The same integer sums; only the order of the float epilogue may differ.
        expect(worst).toBeLessThan(1e-4);
      } finally {
        await signed.close();
        await unsigned.close();
      }
    },
  );
});
