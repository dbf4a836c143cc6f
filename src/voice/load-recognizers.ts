import type { AvaConfig } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { PocketsphinxRecognizer } from './pocketsphinx-recognizer.js';
import type { SpeechRecognizer } from './speech-recognizer.js';

/**
 * The worker's recognisers, in order of preference (`AVA_ASR`): pocketsphinx for US English. `auto` skips an engine
 * that is not installed, with a warning; naming an engine makes its absence stop the worker at start. `off`, or
 * nothing installed: none, and voice messages fail with ERR_RECOGNIZER.
 */
export async function loadRecognizers(config: AvaConfig, log: Logger): Promise<SpeechRecognizer[]> {
  if (config.asr === 'off') return [];
  const out: SpeechRecognizer[] = [];
  if (config.asr === 'auto' || config.asr === 'pocketsphinx') {
    try {
      out.push(await PocketsphinxRecognizer.load({ modelDir: config.asrPocketsphinxModel, languageModel: config.asrLanguageModel }));
    } catch (err) {
      if (config.asr === 'pocketsphinx') throw err;
      log.warn({ err }, 'pocketsphinx not available: English voice messages need it (apt-get install libpocketsphinx3 pocketsphinx-en-us)');
    }
  }
  if (out.length === 0) log.warn('no speech recogniser: voice messages will fail with ERR_RECOGNIZER');
  else log.info({ recognizers: out.map((r) => ({ engine: r.engine, languages: r.languages })) }, 'speech recognisers loaded');
  return out;
}
