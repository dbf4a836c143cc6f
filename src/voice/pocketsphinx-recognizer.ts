import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi, { type LibraryHandle } from 'koffi';
import { RecognizerError } from '../errors/errors.js';
import { buildArpa } from './domain-language-model.js';
import type { Hypothesis, SpeechRecognizer, Transcript } from './speech-recognizer.js';

/** Where Debian's `pocketsphinx-en-us` puts the US English model. */
export const DEBIAN_EN_US_MODEL = '/usr/share/pocketsphinx/model/en-us';

/**
 * Which language model decodes: the domain's (falling back to the general one when it hears nothing), the domain's
 * interpolated with the general one (`blend`; the same fallback), or the general one.
 */
export type LanguageModelChoice = 'domain' | 'blend' | 'general';

/** Options of the pocketsphinx recogniser. */
export interface PocketsphinxOptions {
  /** Folder with `en-us/` (acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`. */
  modelDir?: string;
  /** `general` ignores the domain's text; for measuring what the domain model adds. `blend`: bench profiles only. */
  languageModel?: LanguageModelChoice;
  /** Hypotheses kept from the n-best list (1: the best path only). */
  nbest?: number;
  /** With `blend`: the domain model's interpolation weight, the general model having the rest. */
  blendWeight?: number;
}

/** sphinxbase's NGRAM_AUTO: the file type is told by its contents. */
const NGRAM_AUTO = 0;

/** pocketsphinx's log base: scores are in units of log(1.0001). */
const LOG_BASE = Math.log(1.0001);

/** The C functions of libpocketsphinx 5prealpha (Debian's libpocketsphinx3) that decoding needs. */
interface Native {
  parseArgs(argc: number, argv: string[]): unknown;
  init(config: unknown): unknown;
  freeArgs(config: unknown): number;
  free(ps: unknown): number;
  startStream(ps: unknown): number;
  startUtt(ps: unknown): number;
  processRaw: {
    async(
      ps: unknown,
      data: Int16Array,
      n: number,
      noSearch: number,
      fullUtt: number,
      done: (err: unknown, res: number) => void,
    ): void;
  };
  endUtt(ps: unknown): number;
  getHyp(ps: unknown, score: number[]): string | null;
  getProb(ps: unknown): number;
  getLogmath(ps: unknown): unknown;
  logmathExp(lmath: unknown, p: number): number;
  setLmFile: { async(ps: unknown, name: string, path: string, done: (err: unknown, res: number) => void): void };
  setSearch(ps: unknown, name: string): number;
  nbest(ps: unknown): unknown;
  nbestNext(nbest: unknown): unknown;
  nbestHyp(nbest: unknown, score: number[]): string | null;
  nbestFree(nbest: unknown): void;
  getConfig(ps: unknown): unknown;
  readLm(config: unknown, path: string, type: number, lmath: unknown): unknown;
  lmSet(config: unknown, models: unknown[], names: string[], weights: Float32Array, n: number): unknown;
  setLm: { async(ps: unknown, name: string, lm: unknown, done: (err: unknown, res: number) => void): void };
}

let native: Native | undefined;

/** Binds the library once per process; a missing library is the operator's to install. */
function bind(): Native {
  if (native) return native;
  let sb: LibraryHandle, ps: LibraryHandle;
  try {
    sb = koffi.load('libsphinxbase.so.3');
    ps = koffi.load('libpocketsphinx.so.3');
  } catch (cause) {
    throw new RecognizerError(`cannot load libpocketsphinx: ${(cause as Error).message}`, {
      cause,
      hint: 'apt-get install libpocketsphinx3 pocketsphinx-en-us',
    });
  }
  const psArgs = ps.func('void *ps_args(void)');
  const parse = sb.func('void *cmd_ln_parse_r(void *inout, void *defn, int argc, const char **argv, int strict)');
  native = {
    parseArgs: (argc, argv) => parse(null, psArgs(), argc, argv, 1),
    init: ps.func('void *ps_init(void *config)'),
    freeArgs: sb.func('int cmd_ln_free_r(void *config)'),
    free: ps.func('int ps_free(void *ps)'),
    startStream: ps.func('int ps_start_stream(void *ps)'),
    startUtt: ps.func('int ps_start_utt(void *ps)'),
    processRaw: ps.func('int ps_process_raw(void *ps, const int16_t *data, size_t n, int no_search, int full_utt)'),
    endUtt: ps.func('int ps_end_utt(void *ps)'),
    getHyp: ps.func('const char *ps_get_hyp(void *ps, _Out_ int *score)'),
    getProb: ps.func('int ps_get_prob(void *ps)'),
    getLogmath: ps.func('void *ps_get_logmath(void *ps)'),
    logmathExp: sb.func('double logmath_exp(void *lmath, int p)'),
    setLmFile: ps.func('int ps_set_lm_file(void *ps, const char *name, const char *path)'),
    setSearch: ps.func('int ps_set_search(void *ps, const char *name)'),
    nbest: ps.func('void *ps_nbest(void *ps)'),
    nbestNext: ps.func('void *ps_nbest_next(void *nbest)'),
    nbestHyp: ps.func('const char *ps_nbest_hyp(void *nbest, _Out_ int *score)'),
    nbestFree: ps.func('void ps_nbest_free(void *nbest)'),
    getConfig: ps.func('void *ps_get_config(void *ps)'),
    readLm: sb.func('void *ngram_model_read(void *config, const char *file, int type, void *lmath)'),
    lmSet: sb.func(
      'void *ngram_model_set_init(void *config, void **models, const char **names, const float *weights, int n)',
    ),
    setLm: ps.func('int ps_set_lm(void *ps, const char *name, void *lm)'),
  } as Native;
  return native;
}

/** pocketsphinx names the search made from `-lm` this. */
const GENERAL_SEARCH = '_default';

/**
 * Offline US English recognition with CMU pocketsphinx, loaded once into the process (through the C library, so an
 * utterance costs its decoding, not the ~0.3 s model load) and decoding on a libuv thread, so the worker's event loop
 * keeps renewing locks and streaming meanwhile. Utterances are decoded one at a time per instance.
 *
 * The domain language model (a trigram model of the intents' examples and the knowledge base, {@link buildArpa})
 * decodes first; when it hears no words, the general model decodes again.
 */
export class PocketsphinxRecognizer implements SpeechRecognizer {
  readonly engine = 'pocketsphinx';
  readonly languages = ['en'] as const;
  private queue: Promise<unknown> = Promise.resolve();
  private domain = false;
  private closed = false;

  private constructor(
    private readonly lib: Native,
    private readonly decoder: unknown,
    private readonly words: ReadonlySet<string>,
    private readonly workDir: string,
    private readonly choice: LanguageModelChoice,
    private readonly nbestSize: number,
    private readonly blend?: { weight: number; generalFile: string },
  ) {}

  /** Loads the acoustic model, the general language model and the dictionary. */
  static async load(opts: PocketsphinxOptions = {}): Promise<PocketsphinxRecognizer> {
    const dir = opts.modelDir ?? DEBIAN_EN_US_MODEL;
    const dict = join(dir, 'cmudict-en-us.dict');
    const text = await readFile(dict, 'utf8').catch((cause: NodeJS.ErrnoException) => {
      throw new RecognizerError(`cannot read the pocketsphinx dictionary ${dict}: ${cause.code ?? cause.message}`, {
        cause,
        hint: 'apt-get install pocketsphinx-en-us, or set AVA_ASR_POCKETSPHINX_MODEL',
      });
    });
    // Headwords; alternative pronunciations are listed as `word(2)`.
    const words = new Set(
      text
        .split('\n')
        .map((l) => l.slice(0, l.indexOf(' ')))
        .filter((w) => w && !w.includes('(')),
    );
    const lib = bind();
    const argv = [
      '-hmm',
      join(dir, 'en-us'),
      '-lm',
      join(dir, 'en-us.lm.bin'),
      '-dict',
      dict,
      '-logfn',
      '/dev/null',
      '-bestpath',
      'yes',
    ];
    const config = lib.parseArgs(argv.length, argv);
    const decoder = config && lib.init(config);
    // The decoder holds its own reference to the configuration.
    if (config) lib.freeArgs(config);
    if (!decoder)
      throw new RecognizerError(`pocketsphinx could not load its model from ${dir}`, {
        hint: 'check the folder holds en-us/, en-us.lm.bin and cmudict-en-us.dict',
      });
    return new PocketsphinxRecognizer(
      lib,
      decoder,
      words,
      await mkdtemp(join(tmpdir(), 'ava-asr-')),
      opts.languageModel ?? 'domain',
      opts.nbest ?? 1,
      opts.languageModel === 'blend'
        ? { weight: opts.blendWeight ?? 0.9, generalFile: join(dir, 'en-us.lm.bin') }
        : undefined,
    );
  }

  /** Builds the domain model from `sentences` and decodes with it from the next utterance on. */
  async useDomainText(sentences: readonly string[]): Promise<void> {
    if (this.choice === 'general') return;
    const arpa = buildArpa(sentences, (w) => this.words.has(w));
    if (!arpa) return;
    await this.serially(async () => {
      // A file per build: pocketsphinx reads it here, and the previous search stays valid until replaced.
      const file = join(this.workDir, `domain-${Date.now()}.arpa`);
      await writeFile(file, arpa);
      // Building a search takes seconds (pocketsphinx walks its whole dictionary): off the event loop, like decoding.
      const status = await (this.blend ? this.setBlend(file, this.blend) : this.setDomain(file));
      const ok = status === 0;
      await rm(file, { force: true });
      if (!ok) throw new RecognizerError('pocketsphinx refused the domain language model');
      this.domain = true;
    });
  }

  private setDomain(file: string): Promise<number> {
    return new Promise<number>((resolve, reject) =>
      this.lib.setLmFile.async(this.decoder, 'domain', file, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  /**
   * The domain model interpolated with the general one (sphinxbase's model set): words outside the domain text can
   * still be heard, at the weight the general model is given. Both are read afresh for each set, which owns them.
   */
  private setBlend(file: string, blend: { weight: number; generalFile: string }): Promise<number> {
    const lib = this.lib;
    const config = lib.getConfig(this.decoder);
    const lmath = lib.getLogmath(this.decoder);
    const domain = lib.readLm(config, file, NGRAM_AUTO, lmath);
    const general = lib.readLm(config, blend.generalFile, NGRAM_AUTO, lmath);
    if (!domain || !general) return Promise.resolve(-1);
    const weights = Float32Array.of(blend.weight, 1 - blend.weight);
    const set = lib.lmSet(config, [domain, general], ['domain', 'general'], weights, 2);
    if (!set) return Promise.resolve(-1);
    return new Promise<number>((resolve, reject) =>
      lib.setLm.async(this.decoder, 'domain', set, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  /** Transcribes one utterance of US English. */
  transcribe(pcm: Int16Array, _language?: string): Promise<Transcript> {
    return this.serially(async () => {
      if (this.domain) {
        const heard = await this.decode(pcm, 'domain');
        if (heard.text) return heard;
      }
      return this.decode(pcm, GENERAL_SEARCH);
    });
  }

  /** Frees the decoder once the utterance in progress is done. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.serially(async () => {
      this.closed = true;
      this.lib.free(this.decoder);
      await rm(this.workDir, { recursive: true, force: true });
    });
  }

  private async decode(pcm: Int16Array, search: string): Promise<Transcript> {
    const lib = this.lib;
    if (lib.setSearch(this.decoder, search) !== 0) throw new RecognizerError(`pocketsphinx has no search ${search}`);
    // Each message is a stream of its own: pocketsphinx keeps its noise estimate from one utterance to the next until a
    // stream starts, which would make a transcript depend on whatever audio (another tenant's) the decoder heard before.
    if (lib.startStream(this.decoder) !== 0 || lib.startUtt(this.decoder) !== 0)
      throw new RecognizerError('pocketsphinx could not start an utterance');
    const processed = await new Promise<number>((resolve, reject) =>
      lib.processRaw.async(this.decoder, pcm, pcm.length, 0, 1, (err, res) => (err ? reject(err) : resolve(res))),
    );
    if (lib.endUtt(this.decoder) !== 0 || processed < 0)
      throw new RecognizerError('pocketsphinx failed to decode the utterance');
    const hyp = (lib.getHyp(this.decoder, [0]) ?? '').trim();
    const confidence = lib.logmathExp(lib.getLogmath(this.decoder), lib.getProb(this.decoder));
    const hypotheses = hyp && this.nbestSize > 1 ? this.nbest(hyp) : [];
    return {
      text: hyp,
      confidence: Math.min(1, Math.max(0, confidence)),
      languageModel: search === GENERAL_SEARCH ? 'general' : this.blend ? 'blend' : 'domain',
      ...(hypotheses.length > 1 ? { hypotheses } : {}),
    };
  }

  /**
   * Up to n word sequences from the lattice's n-best list (A* search), best first, with their A* scores (the best
   * path's own score is on another scale). Entries that differ only in fillers or timing repeat a word sequence; each
   * is kept once. The best path comes first, with the best A* score, when the search did not find it.
   */
  private nbest(bestPath: string): Hypothesis[] {
    const lib = this.lib;
    const out: Hypothesis[] = [];
    const seen = new Set<string>();
    let it = lib.nbest(this.decoder);
    for (let steps = 0; it && out.length < this.nbestSize && steps < 4 * this.nbestSize; steps++) {
      const score = [0];
      const text = (lib.nbestHyp(it, score) ?? '').trim();
      if (text && !seen.has(text)) {
        seen.add(text);
        out.push({ text, logScore: score[0] * LOG_BASE });
      }
      it = lib.nbestNext(it);
    }
    // The iterator frees itself when it runs out; one stopped early is freed here.
    if (it) lib.nbestFree(it);
    if (!seen.has(bestPath)) out.unshift({ text: bestPath, logScore: out[0]?.logScore ?? 0 });
    else
      out.unshift(
        ...out.splice(
          out.findIndex((h) => h.text === bestPath),
          1,
        ),
      );
    return out.slice(0, this.nbestSize);
  }

  /** One decoder, one utterance at a time: later calls wait for earlier ones, whatever their outcome. */
  private serially<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new RecognizerError('the pocketsphinx recogniser is closed');
      return task();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
