import { describe, expect, it } from 'vitest';
import { sniffAudio } from '../../src/voice/audio-format.js';
import { wavFile } from '../helpers/wav-header.js';

const codeOf = (bytes: Buffer) => {
  try {
    sniffAudio(bytes);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe('sniffAudio', () => {
  it('names each accepted container by its magic bytes', () => {
    expect(sniffAudio(wavFile(16000, Buffer.alloc(32000)))).toEqual({
      container: 'wav',
      contentType: 'audio/wav',
      sampleRate: 16000,
      seconds: 1,
    });
    expect(sniffAudio(Buffer.from('OggS\0\x02rest-of-page')).container).toBe('ogg');
    expect(sniffAudio(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42])).container).toBe('webm');
    expect(
      sniffAudio(Buffer.from([...Buffer.from('ID3\x04\0\0\0\0\0\x02'), 0, 0, 0xff, 0xfb, 0x90, 0x64])).container,
    ).toBe('mp3');
    expect(sniffAudio(Buffer.from([0xff, 0xfb, 0x90, 0x64])).container).toBe('mp3');
    expect(sniffAudio(Buffer.from('fLaC\0\0\0\x22')).container).toBe('flac');
    expect(sniffAudio(Buffer.from('\0\0\0\x20ftypM4A ')).container).toBe('mp4');
  });

  it('refuses what is not audio, and a WAV that lies about itself, with a code each', () => {
    expect(codeOf(Buffer.from('hello, this is text'))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(Buffer.alloc(0))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toBe('ERR_AUDIO_FORMAT');
    // Three letters are not an MP3: an ID3 tag must be a well-formed one with an MPEG frame after it.
    expect(codeOf(Buffer.from('ID3\x04\0\0\0\0\0\0#EXTM3U\nfile:///etc/passwd'))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(Buffer.from('ID3 anything at all'))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(Buffer.from([...Buffer.from('ID3\x04\0\0\0\0\0\x7f'), 0xff, 0xfb, 0x90, 0x64]))).toBe(
      'ERR_AUDIO_FORMAT',
    );
    expect(codeOf(Buffer.from('RIFF\x10\0\0\0AVI LIST'))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(Buffer.from('RIFF\x10\0\0\0WAVEjunkjunkjunk'))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(wavFile(16000, Buffer.alloc(100), 100, 0x55))).toBe('ERR_AUDIO_FORMAT');
    expect(codeOf(wavFile(16000, Buffer.alloc(100), 10_000))).toBe('ERR_AUDIO_TRUNCATED');
    expect(codeOf(wavFile(16000, Buffer.alloc(0)).subarray(0, 40))).toBe('ERR_AUDIO_TRUNCATED');
    expect(codeOf(wavFile(3, Buffer.alloc(100)))).toBe('ERR_AUDIO_SAMPLE_RATE');
    expect(codeOf(wavFile(4_000_000, Buffer.alloc(100)))).toBe('ERR_AUDIO_SAMPLE_RATE');
  });

  it('measures a streamed WAV (size unknown in its header) by the bytes it holds', () => {
    expect(sniffAudio(wavFile(8000, Buffer.alloc(16000 * 3), 0xffffffff)).seconds).toBe(3);
    expect(sniffAudio(wavFile(8000, Buffer.alloc(16000), 0x7ffff000)).seconds).toBe(1);
  });
});
