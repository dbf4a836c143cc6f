import type { GenerationRequest, GenerationResult, TextGenerator } from '../../src/generation/text-generator.js';
import { WrappedGenerator } from './wrapped-generator.js';

/**
 * Wraps a real generator and records the size and prompts of every generate call (an observer, not a stand-in).
 * `hold` makes calls wait until a test releases them, to catch a message while it is being processed. `poison`
 * requests fail inside the real generator, in the middle of the running batch: their stream consumer throws at
 * the first piece of text.
 */
export class CountingGenerator extends WrappedGenerator {
  readonly calls: number[] = [];
  readonly prompts: string[] = [];
  /** While set, generate calls wait for it before generating. */
  hold?: Promise<void>;

  /** `poison` sees each request's prompt as text. */
  constructor(
    inner: TextGenerator,
    private readonly poison?: (prompt: string) => boolean,
  ) {
    super(inner);
  }

  async generate(requests: readonly GenerationRequest[]): Promise<GenerationResult[]> {
    this.calls.push(requests.length);
    const prompts = requests.map((r) => this.inner.tokenizer.decode(r.promptIds));
    this.prompts.push(...prompts);
    await this.hold;
    const poisoned = (r: GenerationRequest, prompt: string): GenerationRequest => ({
      ...r,
      onText: () => {
        throw new Error(`refusing prompt: ${prompt.slice(-40)}`);
      },
    });
    return this.inner.generate(requests.map((r, i) => (this.poison?.(prompts[i]) ? poisoned(r, prompts[i]) : r)));
  }
}
