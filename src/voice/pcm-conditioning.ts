/**
 * Preparing 16 kHz mono PCM for recognition: a noise floor under digital silence, and level and silence conditioning
 * (what a phone line or a quiet microphone does to speech, undone). The recogniser's acoustic model was trained on
 * speech at a conversational level; a recording far below it (or clipped above it) is heard worse, and long silence
 * around the words costs decoding time and gives the language model room to insert words.
 */

/** Frame length for the energy measure: 10 ms at 16 kHz. */
const FRAME = 160;
/** A frame is silence below this share of the loudest frame's RMS (-35 dB). */
const SILENCE_RATIO = 10 ** (-35 / 20);
/** Silence kept on each side of the speech, in frames (200 ms), so that no word's onset or tail is cut. */
const MARGIN_FRAMES = 20;
/** Target RMS of the speech frames, as a share of full scale (-20 dBFS). */
const TARGET_RMS = 0.1 * 32767;
/** The gain never pushes a sample past this share of full scale (-1 dBFS), and never exceeds 30 dB. */
const PEAK_LIMIT = 0.89 * 32767;
const MAX_GAIN = 10 ** (30 / 20);

/** What conditioning did, for the transcript's record and for measurement. */
export interface Conditioning {
  /** The conditioned samples (a new array; the input is not changed). */
  pcm: Int16Array;
  /** Samples cut from the start and from the end. */
  trimmed: { start: number; end: number };
  /** The gain applied (1: none). */
  gain: number;
}

/**
 * Trims the silence before the first and after the last speech frame (keeping 200 ms on each side), then scales the
 * speech frames' RMS to -20 dBFS, limited so that no sample passes -1 dBFS and the gain stays within 30 dB. All
 * silence, or nothing at all, comes back unchanged.
 */
export function conditionPcm(pcm: Int16Array): Conditioning {
  const { rms, floor } = frameLevels(pcm);
  if (floor === 0) return { pcm: pcm.slice(), trimmed: { start: 0, end: 0 }, gain: 1 };
  const frames = rms.length;
  const first = rms.findIndex((r) => r >= floor);
  const last = rms.findLastIndex((r) => r >= floor);
  const start = Math.max(0, first - MARGIN_FRAMES) * FRAME;
  const end = last + MARGIN_FRAMES + 1 >= frames ? pcm.length : (last + MARGIN_FRAMES + 1) * FRAME;
  const kept = pcm.subarray(start, end);
  let peak = 0;
  for (const x of kept) peak = Math.max(peak, Math.abs(x));
  const gain = Math.min(TARGET_RMS / rmsOfSpeech(rms, floor), PEAK_LIMIT / peak, MAX_GAIN);
  const out = new Int16Array(kept.length);
  for (let i = 0; i < kept.length; i++) out[i] = Math.round(kept[i] * gain);
  return { pcm: out, trimmed: { start, end: pcm.length - end }, gain };
}

/**
 * Seed of the noise floor: fixed, so that the same audio is always heard the same way (a retried message, a replay).
 */
const NOISE_SEED = 0x5eed;

/** How a worker prepares PCM for its recogniser. */
export interface PcmPreparation {
  /**
   * Trim and level ({@link conditionPcm}): a bench profile only (`npm run bench:voice`), not a setting, since it did
   * not help on the measured voices (docs/voice.md).
   */
  condition?: boolean;
  /** The noise floor, in dB below the speech ({@link addNoiseFloor}), or undefined for none; `AVA_ASR_NOISE_FLOOR`. */
  noiseFloorDb: number | undefined;
}

/** `pcm` as the recogniser hears it: conditioned when asked, then with the noise floor under it. */
export function preparePcm(pcm: Int16Array, how: PcmPreparation): Int16Array {
  const conditioned = how.condition ? conditionPcm(pcm).pcm : pcm;
  return how.noiseFloorDb === undefined ? conditioned : addNoiseFloor(conditioned, how.noiseFloorDb);
}

/**
 * `pcm` with its noise raised to a floor `belowSpeechDb` under the speech's RMS, by seeded white noise: only as much
 * as the recording lacks (its own noise is the RMS of its quietest tenth of frames), so a recording already that
 * noisy is returned as it is, and so is silence. Digital silence, runs of exact zeros such as a synthesiser, a
 * client's voice-activity gate or a muted line writes, is nothing a microphone records, and pocketsphinx hears the
 * speech around it much worse (measured in docs/voice.md; turning its own noise removal off does not help).
 */
export function addNoiseFloor(pcm: Int16Array, belowSpeechDb: number): Int16Array {
  const { rms, floor } = frameLevels(pcm);
  if (floor === 0) return pcm;
  const target = rmsOfSpeech(rms, floor) / 10 ** (belowSpeechDb / 20);
  const quietest = [...rms].sort((a, b) => a - b).slice(0, Math.max(1, Math.floor(rms.length / 10)));
  const own = Math.sqrt(quietest.reduce((s, r) => s + r * r, 0) / quietest.length);
  const sigma = Math.sqrt(Math.max(0, target * target - own * own));
  return sigma > 0 ? mixNoise(pcm, sigma, NOISE_SEED) : pcm;
}

/** `pcm` plus seeded white Gaussian noise of RMS `sigma` (in sample units), clipped to 16 bits: a new array. */
export function mixNoise(pcm: Int16Array, sigma: number, seed: number): Int16Array {
  let state = seed >>> 0 || 1;
  // A linear congruential generator (Numerical Recipes' constants), then Box-Muller: reproducible from the seed.
  const uniform = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) {
    const gauss = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
    out[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i] + sigma * gauss)));
  }
  return out;
}

/** The RMS of the speech in `pcm`: over its 10 ms frames no more than 35 dB below the loudest; 0 for silence. */
export function speechRms(pcm: Int16Array): number {
  const { rms, floor } = frameLevels(pcm);
  return floor === 0 ? 0 : rmsOfSpeech(rms, floor);
}

/**
 * Each 10 ms frame's RMS, and the level below which a frame is silence (0 when all is silence). The loudest frame is
 * found by a loop, not by spreading into Math.max, which an hour of frames would overflow.
 */
function frameLevels(pcm: Int16Array): { rms: number[]; floor: number } {
  const rms = Array.from({ length: Math.floor(pcm.length / FRAME) }, (_, f) => frameRms(pcm, f * FRAME, FRAME));
  let loudest = 0;
  for (const r of rms) loudest = Math.max(loudest, r);
  return { rms, floor: loudest * SILENCE_RATIO };
}

/** The RMS over the frames at or above the silence floor. */
function rmsOfSpeech(rms: readonly number[], floor: number): number {
  const speech = rms.filter((r) => r >= floor);
  return Math.sqrt(speech.reduce((s, r) => s + r * r, 0) / speech.length);
}

function frameRms(pcm: Int16Array, from: number, length: number): number {
  let sum = 0;
  for (let i = from; i < from + length; i++) sum += pcm[i] * pcm[i];
  return Math.sqrt(sum / length);
}
