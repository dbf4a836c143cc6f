import { describe, expect, it } from 'vitest';
import { addNoiseFloor, conditionPcm, preparePcm, speechRms } from '../../src/voice/pcm-conditioning.js';

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

  it('raises digital silence to a seeded noise floor below the speech, the same every time', () => {
    const tone = toneBetweenSilence(1, 3_000, 1);
    const floored = addNoiseFloor(tone, 30);
    expect(tone.slice(0, 16_000).every((x) => x === 0)).toBe(true);
    // The silence before the tone now holds noise 30 dB below the tone's RMS.
    expect(20 * Math.log10(rms(tone.subarray(16_000, 32_000)) / rms(floored.subarray(0, 16_000)))).toBeCloseTo(30, 0);
    // The same audio is heard the same way: a retried message gets the same transcript.
    expect(addNoiseFloor(tone, 30)).toEqual(floored);
  });

  it('adds only the noise a recording lacks: none to a noisy one, none to silence', () => {
    const tone = toneBetweenSilence(1, 3_000, 1);
    const noisy = addNoiseFloor(tone, 20);
    expect(addNoiseFloor(noisy, 30)).toBe(noisy);
    const silence = new Int16Array(16_000);
    expect(addNoiseFloor(silence, 30)).toBe(silence);
  });

  it('prepares PCM as asked: conditioned, then with the floor under it, or untouched', () => {
    const pcm = toneBetweenSilence(1, 300, 1);
    expect(preparePcm(pcm, { condition: false, noiseFloorDb: undefined })).toBe(pcm);
    const prepared = preparePcm(pcm, { condition: true, noiseFloorDb: 30 });
    expect(prepared).toEqual(addNoiseFloor(conditionPcm(pcm).pcm, 30));
    expect(prepared.length).toBe(16_000 + 2 * 3_200);
  });
});
