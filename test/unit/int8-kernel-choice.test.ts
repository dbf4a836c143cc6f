import { describe, expect, it } from 'vitest';
import { parseCpuInfo, u8s8IsExact } from '../../src/inference/cpu-features.js';
import { chooseInt8Kernel } from '../../src/inference/int8-kernel.js';
import type { Int8Formulation } from '../../src/models/int8-matmul.js';
import { ModelLoadError } from '../../src/errors/errors.js';

// Abridged /proc/cpuinfo texts of the CPU classes the project has run on.
const XEON_VNNI =
  'processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nflags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni\n\nprocessor\t: 1\nflags\t\t: fpu\n';
const EPYC_AVX2 =
  'processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n';
const ALDER_LAKE = 'model name\t: 12th Gen Intel(R) Core(TM) i7-1260P\nflags\t\t: avx2 fma avx_vnni\n';
const GRAVITON =
  'processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\nCPU implementer\t: 0x41\n';

const exactProbe = (inexact: Int8Formulation[] = []) => {
  const asked: Int8Formulation[] = [];
  const probe = async (f: Int8Formulation) => {
    asked.push(f);
    return { formulation: f, exact: !inexact.includes(f), worstError: inexact.includes(f) ? 31_995 : 0 };
  };
  return { probe, asked };
};

describe('the int8 kernel for a CPU', () => {
  it('reads the model name and the first processor’s flags from /proc/cpuinfo', () => {
    const cpu = parseCpuInfo(XEON_VNNI, 'x64');
    expect(cpu.model).toBe('Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz');
    expect(cpu.flags?.has('avx512_vnni')).toBe(true);
    expect(parseCpuInfo(GRAVITON, 'arm64').flags?.has('asimddp')).toBe(true);
    expect(parseCpuInfo('', 'x64').flags).toBeUndefined();
  });

  it('takes u8·s8 as exact only where the CPU has a non-saturating dot product', () => {
    expect(u8s8IsExact(parseCpuInfo(XEON_VNNI, 'x64'))).toMatchObject({ exact: true, reason: 'x86 with avx512_vnni' });
    expect(u8s8IsExact(parseCpuInfo(ALDER_LAKE, 'x64'))).toMatchObject({ exact: true, reason: 'x86 with avx_vnni' });
    expect(u8s8IsExact(parseCpuInfo(GRAVITON, 'arm64')).exact).toBe(true);
    expect(u8s8IsExact(parseCpuInfo(EPYC_AVX2, 'x64'))).toMatchObject({
      exact: false,
      reason: expect.stringMatching(/without VNNI/),
    });
    expect(u8s8IsExact({ arch: 'x64', model: '' }).exact).toBe(false);
    expect(u8s8IsExact({ arch: 'riscv64', model: '' }).exact).toBe(false);
  });

  it('auto: u8s8 with VNNI, u8u8 without, each proven by the probe before it is used', async () => {
    const vnni = exactProbe();
    await expect(chooseInt8Kernel('auto', parseCpuInfo(XEON_VNNI, 'x64'), vnni.probe)).resolves.toMatchObject({
      formulation: 'u8s8',
      reason: 'x86 with avx512_vnni; probe exact',
    });
    expect(vnni.asked).toEqual(['u8s8']);
    const avx2 = exactProbe();
    await expect(chooseInt8Kernel('auto', parseCpuInfo(EPYC_AVX2, 'x64'), avx2.probe)).resolves.toMatchObject({
      formulation: 'u8u8',
      cpu: 'AMD EPYC 7B13',
    });
    expect(avx2.asked).toEqual(['u8u8']);
  });

  it('auto falls back to u8u8 when the flags claim VNNI but the probe finds clipped sums', async () => {
    const lying = exactProbe(['u8s8']);
    const choice = await chooseInt8Kernel('auto', parseCpuInfo(XEON_VNNI, 'x64'), lying.probe);
    expect(choice.formulation).toBe('u8u8');
    expect(choice.reason).toMatch(/u8s8 probe was off by 31995/);
    expect(lying.asked).toEqual(['u8s8', 'u8u8']);
  });

  it('refuses an explicit formulation that is not exact here, naming the setting', async () => {
    const err = await chooseInt8Kernel('u8s8', parseCpuInfo(EPYC_AVX2, 'x64'), exactProbe(['u8s8']).probe).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).message).toMatch(/u8s8 is not exact on this CPU \(AMD EPYC 7B13\)/);
    expect((err as ModelLoadError).hint).toMatch(/AVA_ENGINE_INT8_KERNEL=auto/);
    await expect(chooseInt8Kernel('u8u8', parseCpuInfo(XEON_VNNI, 'x64'), exactProbe().probe)).resolves.toMatchObject({
      formulation: 'u8u8',
      reason: 'AVA_ENGINE_INT8_KERNEL=u8u8; probe exact',
    });
  });
});
