import type { GenerationRequest, GenerationResult, TextGenerator } from './text-generator.js';

/**
 * A generator without a model that answers at once with a fixed text: it measures what the queue and the storage
 * cost by themselves (`AVA_GENERATOR=instant`, used by `npm run bench:pipeline`). Never the default.
 */
export class InstantGenerator implements TextGenerator {
  readonly model = { id: 'instant', revision: 'none' } as const;

  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    return requests.map(() => ({ text: 'Thank you for your message.', promptTokens: 0, generatedTokens: 0, finishReason: 'stop' as const }));
  }

  async close(): Promise<void> {}
}
