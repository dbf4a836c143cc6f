import { readFileSync } from 'node:fs';

/** What the engine needs to know about the CPU it runs on. */
export interface CpuFeatures {
  /** `process.arch`: `x64`, `arm64`, … */
  arch: string;
  /** The model name the OS reports (`model name` in /proc/cpuinfo), or '' where unknown. */
  model: string;
  /** Feature flags the OS reports (lower case), or `undefined` where they could not be read. */
  flags?: ReadonlySet<string>;
}

/** x86 flags that give a u8·s8 dot product without a saturating 16-bit intermediate (VPDPBUSD or AMX). */
const EXACT_U8S8_FLAGS = ['avx512_vnni', 'avx_vnni', 'amx_int8'];

/**
 * Parses the text of /proc/cpuinfo: the first processor's model name and its feature flags (`flags` on x86,
 * `Features` on ARM).
 */
export function parseCpuInfo(text: string, arch: string): CpuFeatures {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'mi').exec(text)?.[1]?.trim();
  const list = field('flags') ?? field('Features');
  return {
    arch,
    model: field('model name') ?? field('Model') ?? '',
    ...(list !== undefined ? { flags: new Set(list.toLowerCase().split(/\s+/).filter(Boolean)) } : {}),
  };
}

/** The CPU this process runs on; flags are read from /proc/cpuinfo where the OS has one. */
export function readCpuFeatures(): CpuFeatures {
  try {
    return parseCpuInfo(readFileSync('/proc/cpuinfo', 'utf8'), process.arch);
  } catch {
    // No /proc (macOS, Windows): the flags stay unknown, and the caller takes the formulation that is exact anywhere.
    return { arch: process.arch, model: '' };
  }
}

/**
 * Whether ONNX Runtime's u8·s8 GEMM is exact on this CPU: on ARM (its kernels widen or use UDOT/SDOT) and on x86 with
 * VNNI or AMX; not on x86 without them (`vpmaddubsw` saturates pairs in int16), nor where the flags are unknown.
 * Returns the reason, for the start-up log.
 */
export function u8s8IsExact(cpu: CpuFeatures): { exact: boolean; reason: string } {
  if (cpu.arch === 'arm64' || cpu.arch === 'arm')
    return { exact: true, reason: `${cpu.arch}: integer dot products do not saturate` };
  if (cpu.arch !== 'x64' && cpu.arch !== 'ia32') return { exact: false, reason: `${cpu.arch}: not known to be exact` };
  if (!cpu.flags) return { exact: false, reason: 'x86 with unknown feature flags' };
  const vnni = EXACT_U8S8_FLAGS.filter((f) => cpu.flags!.has(f));
  if (vnni.length > 0) return { exact: true, reason: `x86 with ${vnni.join(', ')}` };
  return { exact: false, reason: 'x86 without VNNI: u8·s8 pairs would saturate int16' };
}
