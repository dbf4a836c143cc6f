import path from 'node:path';
import type { AvaConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { exists } from '../models/folder-files.js';
import { PocketsphinxRecognizer } from './pocketsphinx-recognizer.js';
import { RecognizerPool } from './recognizer-pool.js';
import type { SpeechRecognizer } from './speech-recognizer.js';
import { WhisperRecognizer } from './whisper-recognizer.js';
import { RecognizerError } from '../errors/errors.js';

/**
 * The worker's recognisers (`AVA_ASR`): Whisper when its model folder exists (a multilingual one knows many languages
 * and detects them), else pocketsphinx for US English. `auto` skips an engine that is not installed (with a
 * warning for pocketsphinx); naming an engine makes its absence stop the worker at start. A Whisper folder that
 * exists but does not load always stops it. `off`, or nothing installed: none, and voice messages fail with
 * ERR_RECOGNIZER.
 */
export async function loadRecognizers(
  config: Pick<AvaConfig, 'voice' | 'runtime' | 'model'>,
  log: Logger,
): Promise<SpeechRecognizer[]> {
  if (config.voice.asr === 'off') return [];
  const out: SpeechRecognizer[] = [];
  if (config.voice.asr === 'auto' || config.voice.asr === 'whisper') {
    const dir =
      path.isAbsolute(config.voice.whisperModel) || (await exists(config.voice.whisperModel))
        ? config.voice.whisperModel
        : path.join(config.model.dir, config.voice.whisperModel);
    if (await exists(dir))
      out.push(
        await WhisperRecognizer.load(dir, {
          intraOpThreads: config.runtime.intraOpThreads,
          beam: config.voice.whisperBeam,
          batch: config.voice.whisperBatch,
          detect: config.voice.detectLanguages,
        }),
      );
    else if (config.voice.asr === 'whisper')
      throw new RecognizerError(`AVA_ASR=whisper but there is no Whisper model at ${dir}`, {
        hint: 'make one with `npm run models:whisper -- --out models/whisper`, or put a real export there',
      });
  }
  // `auto` needs pocketsphinx only without Whisper: Whisper knows English, pocketsphinx's one language.
  if (config.voice.asr === 'pocketsphinx' || (config.voice.asr === 'auto' && out.length === 0)) {
    try {
      const load = () =>
        PocketsphinxRecognizer.load({
          modelDir: config.voice.pocketsphinxModel,
          languageModel: config.voice.languageModel,
          // The n-best list serves rescoring only: without it, no A* search after each utterance.
          nbest: config.voice.meaningWeight > 0 ? config.voice.nbest : 1,
        });
      // Decoders one after another: a failure leaves none half-loaded behind.
      const decoders: SpeechRecognizer[] = [];
      try {
        for (let i = 0; i < config.voice.decoders; i++) decoders.push(await load());
      } catch (err) {
        await Promise.all(decoders.map((d) => d.close()));
        throw err;
      }
      out.push(decoders.length === 1 ? decoders[0] : new RecognizerPool(decoders));
    } catch (err) {
      if (config.voice.asr === 'pocketsphinx') throw err;
      log.warn(
        { err },
        'pocketsphinx not available: English voice messages need it (apt-get install libpocketsphinx3 pocketsphinx-en-us)',
      );
    }
  }
  if (out.length === 0) log.warn('no speech recogniser: voice messages will fail with ERR_RECOGNIZER');
  else
    log.info(
      {
        recognizers: out.map((r) => ({
          engine: r.engine,
          languages: r.languages,
          decoders: r instanceof RecognizerPool ? r.size : 1,
        })),
      },
      'speech recognisers loaded',
    );
  return out;
}
