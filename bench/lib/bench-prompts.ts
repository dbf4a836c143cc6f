/** The plain English corpus the inference benchmarks cut their prompts from. */
const CORPUS = `Customer service is the support a business offers its customers before and after they buy. Good service
answers quickly, explains clearly and solves the problem the first time. Orders can be tracked online with the number
in the confirmation email; deliveries usually take three to five working days. Returns are accepted within thirty days
when the item is unused and in its original packaging, and refunds reach the original payment method within a week. `;

/** What cutting prompts needs of a tokenizer. */
export interface PromptTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
}

/**
 * `n` prompts of 8–200 tokens cut from the corpus, shuffled deterministically so that long and short ones mix in
 * every batch: the workload of `bench:inference` and `bench:peers`.
 */
export function benchPrompts(tokenizer: PromptTokenizer, n: number): string[] {
  const corpusIds = tokenizer.encode(CORPUS.repeat(8));
  const prompts = Array.from({ length: n }, (_, i) => {
    const len = 8 + Math.round((i * 192) / Math.max(1, n - 1));
    return tokenizer.decode(corpusIds.slice(i % 40, (i % 40) + len));
  });
  for (let i = prompts.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [prompts[i], prompts[j]] = [prompts[j], prompts[i]];
  }
  return prompts;
}

/**
 * `n` distinct prompts of exactly `length` token ids, cut from the corpus at different offsets: the workload of
 * `bench:peers`, fed to every engine as ids so that none tokenizes differently.
 */
export function benchPromptIds(encode: (text: string) => number[], n: number, length: number): number[][] {
  const once = encode(CORPUS);
  const ids = encode(CORPUS.repeat(Math.ceil((length + n * 7) / once.length) + 1));
  return Array.from({ length: n }, (_, i) => ids.slice(i * 7, i * 7 + length));
}
