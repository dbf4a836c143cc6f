import { describe, expect, it } from 'vitest';
import { conditionPcm, speechRms } from '../../src/voice/pcm-conditioning.js';

/** `seconds` of a 220 Hz tone at `amplitude`, between `silence` seconds of quiet on each side. */
function toneBetweenSilence(seconds: number, amplitude: number, silence: number): Int16Array {
  const rate = 16_000;
  const quiet = Math.round(silence * rate);
  const out = new Int16Array(quiet * 2 + Math.round(seconds * rate));
  for (let i = 0; i < out.length - quiet * 2; i++)
    out[quiet + i] = Math.round(amplitude * Math.sin((2 * Math.PI * 220 * i) / rate));
  return out;
}
const rms = (pcm: Int16Array) => Math.sqrt(pcm.reduce((s, x) => s + x * x, 0) / pcm.length);

describe('PCM conditioning', () => {
  it('trims the silence around the speech, keeping 200 ms on each side', () => {
    const out = conditionPcm(toneBetweenSilence(1, 3_000, 2));
    expect(out.pcm.length).toBe(16_000 + 2 * 3_200);
    expect(out.trimmed).toEqual({ start: 32_000 - 3_200, end: 32_000 - 3_200 });
  });

  it('brings quiet speech to -20 dBFS and never clips loud speech', () => {
    const quiet = conditionPcm(toneBetweenSilence(1, 300, 0));
    expect(20 * Math.log10(rms(quiet.pcm) / 32767)).toBeCloseTo(-20, 0);
    const loud = conditionPcm(toneBetweenSilence(1, 32_000, 0));
    expect(Math.max(...loud.pcm.map(Math.abs))).toBeLessThanOrEqual(Math.round(0.89 * 32767));
    expect(loud.gain).toBeLessThan(1);
  });

  it('leaves all-silence alone and bounds the gain at 30 dB', () => {
    expect(conditionPcm(new Int16Array(16_000)).gain).toBe(1);
    expect(conditionPcm(toneBetweenSilence(1, 2, 0)).gain).toBeCloseTo(10 ** 1.5, 5);
  });

  it('takes long audio (25 minutes of frames) without overflowing the stack', () => {
    // 25 minutes: 150,000 frames, past what spreading them into Math.max survives.
    const long = toneBetweenSilence(1_500, 300, 0);
    expect(conditionPcm(long).pcm.length).toBe(long.length);
    expect(speechRms(long)).toBeCloseTo(300 / Math.SQRT2, -1);
  });
});
