import { ModelLoadError } from '../errors/errors.js';
import type { Int8Formulation } from '../models/int8-matmul.js';
import { readCpuFeatures, u8s8IsExact, type CpuFeatures } from './cpu-features.js';
import { probeInt8Formulation, type Int8ProbeResult } from './int8-probe.js';
import { probeBlockInt8, type BlockInt8ProbeResult } from './block-int8-probe.js';

/** What AVA_ENGINE_INT8_KERNEL asks for: `auto` picks from the CPU; a formulation is taken as asked, once proven exact. */
export type Int8KernelSetting = 'auto' | Int8Formulation;

/** The formulation an int8 engine runs, and why: logged at start. */
export interface Int8KernelChoice {
  formulation: Int8Formulation;
  /** The CPU's model name, as the OS reports it. */
  cpu: string;
  reason: string;
}

/**
 * Picks how the int8 engine hands its products to ONNX Runtime on this CPU, and proves the pick exact before any
 * graph is built: `auto` takes u8·s8 where the CPU's flags say its kernel cannot saturate (VNNI, AMX, ARM) and the
 * probe agrees, and u8·u8 (exact everywhere) otherwise. An explicit formulation that the probe finds inexact is
 * refused, so the engine never runs on clipped sums.
 */
export async function chooseInt8Kernel(
  setting: Int8KernelSetting,
  cpu: CpuFeatures = readCpuFeatures(),
  probe: (f: Int8Formulation) => Promise<Int8ProbeResult> = probeInt8Formulation,
): Promise<Int8KernelChoice> {
  const flags = u8s8IsExact(cpu);
  const wanted: Int8Formulation = setting === 'auto' ? (flags.exact ? 'u8s8' : 'u8u8') : setting;
  const result = await probe(wanted);
  if (result.exact) {
    const why = setting === 'auto' ? flags.reason : `AVA_ENGINE_INT8_KERNEL=${setting}`;
    return { formulation: wanted, cpu: cpu.model, reason: `${why}; probe exact` };
  }
  if (setting !== 'auto' || wanted === 'u8u8') {
    throw new ModelLoadError(
      `the int8 kernel ${wanted} is not exact on this CPU (${cpu.model || cpu.arch}): the probe's largest error is ${result.worstError}`,
      {
        hint: 'set AVA_ENGINE_INT8_KERNEL=auto, or run the engine in fp32',
      },
    );
  }
  const fallback = await probe('u8u8');
  if (!fallback.exact)
    throw new ModelLoadError(`no int8 kernel is exact on this CPU (${cpu.model || cpu.arch}); run the engine in fp32`);
  return {
    formulation: 'u8u8',
    cpu: cpu.model,
    reason: `${flags.reason}, but the u8s8 probe was off by ${result.worstError}; probe exact`,
  };
}

/**
 * The int8 block kernel of Llama-family engines (`MatMulNBits`, see blockwise-int8.ts), proven exact on this CPU by
 * {@link probeBlockInt8} before any graph is built; refused when it is not, so the engine never runs on clipped sums.
 */
export async function chooseBlockInt8(
  cpu: CpuFeatures = readCpuFeatures(),
  probe: () => Promise<BlockInt8ProbeResult> = probeBlockInt8,
): Promise<{ kernel: 'block-q8'; cpu: string; reason: string }> {
  const result = await probe();
  if (!result.exact)
    throw new ModelLoadError(
      `ONNX Runtime's int8 block kernel is not exact on this CPU (${cpu.model || cpu.arch}): the probe's largest error is ${result.worstError}`,
      { hint: 'run the engine in fp32 (AVA_ENGINE_PRECISION=fp32)' },
    );
  return { kernel: 'block-q8', cpu: cpu.model, reason: 'int8 blocks of 32 (MatMulNBits); probe exact' };
}
