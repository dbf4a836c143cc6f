import type { GenerationError } from '../errors/errors.js';
import {
  checkFitsWindow,
  type GenerationRequest,
  type GenerationResult,
  type TextGenerator,
} from './text-generator.js';
import type { TextTokenizer } from './text-tokenizer.js';

/**
 * A generator without a model that answers at once with a fixed text: it measures what the queue and the storage
 * cost by themselves (`AVA_GENERATOR=instant`, used by `npm run bench:pipeline`). Never the default. It keeps the
 * model's tokenizer and window, so prompts are built and counted as for the real model.
 */
export class InstantGenerator implements TextGenerator {
  readonly model = { id: 'instant', revision: 'none' } as const;

  readonly window: number;

  constructor(readonly tokenizer: TextTokenizer) {
    this.window = tokenizer.window;
  }

  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    return requests.map((r): GenerationResult => {
      try {
        checkFitsWindow(r, this.window);
      } catch (error) {
        return { finishReason: 'error', error: error as GenerationError };
      }
      return {
        text: 'Thank you for your message.',
        promptTokens: r.promptIds.length,
        generatedTokens: 0,
        finishReason: 'stop',
      };
    });
  }

  async whenCapacity(): Promise<void> {}

  async close(): Promise<void> {}
}
