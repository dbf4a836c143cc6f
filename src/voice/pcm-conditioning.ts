/**
 * Level and silence conditioning of 16 kHz mono PCM before recognition: what a phone line or a quiet microphone does
 * to speech, undone. The recogniser's acoustic model was trained on speech at a conversational level; a recording
 * far below it (or clipped above it) is heard worse, and long silence around the words costs decoding time and gives
 * the language model room to insert words.
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
