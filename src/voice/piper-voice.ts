import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SpeechError } from '../errors/errors.js';
import { OnnxSession } from '../inference/onnx-session.js';
import { runTool } from './run-tool.js';

/** What a Piper voice's `.onnx.json` says of it (the fields read here). */
interface PiperConfig {
  audio: { sample_rate: number };
  espeak: { voice: string };
  inference: { noise_scale: number; length_scale: number; noise_w: number };
  phoneme_type: string;
  phoneme_id_map: Record<string, number[]>;
}

/** Clause ends espeak-ng splits at, which Piper's phoneme map keeps as symbols. */
const CLAUSE_END = /([.,;:!?])(?:\s+|$)/g;

/**
 * A Piper voice (VITS, as the `piper` project exports it: `<name>.onnx` and `<name>.onnx.json`): text becomes
 * espeak-ng's IPA phonemes clause by clause (espeak-ng drops the punctuation, which is put back from the text), then
 * the voice's phoneme ids (`^`, each symbol followed by the pad `_`, `$`), then 16-bit mono PCM at the voice's rate.
 * VITS samples noise, so the same text is not spoken to the same bytes twice.
 */
export class PiperVoice {
  private constructor(
    readonly name: string,
    private readonly session: OnnxSession,
    private readonly config: PiperConfig,
    private readonly espeak: string,
  ) {}

  /** The voice's sample rate, Hz. */
  get sampleRate(): number {
    return this.config.audio.sample_rate;
  }

  /** Loads `<dir>/<name>.onnx` and its config; a folder without one is a {@link SpeechError}. */
  static async load(file: string, opts: { intraOpThreads?: number; espeak?: string } = {}): Promise<PiperVoice> {
    let config: PiperConfig;
    try {
      config = JSON.parse(await readFile(`${file}.json`, 'utf8')) as PiperConfig;
    } catch (cause) {
      throw new SpeechError(`no readable Piper voice config at ${file}.json`, { cause });
    }
    if (config.phoneme_type !== 'espeak') throw new SpeechError(`${file}: phonemes of type ${config.phoneme_type}`);
    const session = await OnnxSession.open(file, { intraOpThreads: opts.intraOpThreads });
    return new PiperVoice(path.basename(file, '.onnx'), session, config, opts.espeak ?? 'espeak-ng');
  }

  /**
   * Speaks `text` as 16-bit PCM samples at {@link sampleRate}: sentence by sentence (the model's input, and its
   * memory, stay a sentence long whatever the reply), with 0.2 s of silence between sentences, as Piper does.
   */
  async speak(text: string, timeoutMs = 30_000): Promise<Int16Array> {
    const { noise_scale, length_scale, noise_w } = this.config.inference;
    const parts: Float32Array[] = [];
    const pause = new Float32Array(Math.round(0.2 * this.sampleRate));
    for (const ids of await this.sentenceIds(text, timeoutMs)) {
      const out = await this.session.run({
        input: { type: 'int64', data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] },
        input_lengths: { type: 'int64', data: BigInt64Array.of(BigInt(ids.length)), dims: [1] },
        scales: { type: 'float32', data: Float32Array.of(noise_scale, length_scale, noise_w), dims: [3] },
      });
      if (parts.length > 0) parts.push(pause);
      parts.push(Object.values(out)[0].data as Float32Array);
    }
    // Brought to full scale by its peak, as Piper does.
    let peak = 0.01;
    for (const part of parts) for (const s of part) peak = Math.max(peak, Math.abs(s));
    const gain = 32767 / peak;
    const pcm = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) for (const s of part) pcm[at++] = Math.max(-32768, Math.min(32767, Math.round(s * gain)));
    return pcm;
  }

  /** Releases the session. */
  async close(): Promise<void> {
    await this.session.close();
  }

  /** Each sentence's phoneme ids: `^`, each symbol followed by the pad `_`, `$`. */
  private async sentenceIds(text: string, timeoutMs: number): Promise<number[][]> {
    const clauses = text
      .replace(/\s+/g, ' ')
      .split(CLAUSE_END)
      .reduce<Array<{ words: string; end: string }>>((acc, part, i) => {
        if (i % 2 === 0) acc.push({ words: part.trim(), end: ' ' });
        else acc[acc.length - 1].end = part;
        return acc;
      }, [])
      .filter((c) => c.words);
    if (clauses.length === 0) throw new SpeechError('there is nothing to speak');
    const { out } = await runTool(
      this.espeak,
      ['-q', '--ipa', '-v', this.config.espeak.voice, '--stdin'],
      clauses.map((c) => `${c.words}${c.end === ' ' ? '' : c.end}`).join('\n'),
      timeoutMs,
      "install Debian's espeak-ng (apt-get install espeak-ng)",
    );
    const lines = out
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    // espeak-ng writes a line per clause; where it split otherwise, the whole text is one sentence.
    const matched = lines.length === clauses.length;
    const map = this.config.phoneme_id_map;
    const pad = map._[0];
    const sentences: number[][] = [];
    let ids: number[] = [];
    lines.forEach((line, i) => {
      const end = matched ? clauses[i].end.trim() : '';
      if (ids.length === 0) ids = [...map['^'], pad];
      else ids.push(...map[' '], pad);
      for (const symbol of `${line}${end}`.normalize('NFD')) if (map[symbol]) ids.push(...map[symbol], pad);
      if (/[.!?]/.test(end) || i === lines.length - 1) {
        sentences.push([...ids, ...map.$]);
        ids = [];
      }
    });
    return sentences;
  }
}
