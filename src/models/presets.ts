/**
 * Model presets the forge can write. The GPT-2-sized ones have the exact shapes of the public checkpoints, so
 * a benchmark on them costs what real GPT-2 costs.
 */

/** Architecture and initialisation of one preset. */
export interface ModelPreset {
  /** Preset name, as given to `--preset`. */
  readonly name: string;
  readonly nLayer: number;
  readonly nHead: number;
  readonly nEmbd: number;
  readonly nPositions: number;
  readonly vocabSize: number;
  /**
   * Multiplier applied to every block weight after GPT-2's initialisation. 1 for the GPT-2-sized presets. A small
   * random model at scale 1 mostly repeats its last token (the tied embedding dominates the residual stream), which
   * makes batching tests meaningless; the tiny preset raises it until continuations depend on the context.
   */
  readonly blockScale: number;
}

const GPT2_VOCAB = 50257;

/** All presets by name. */
export const PRESETS: Readonly<Record<string, ModelPreset>> = Object.freeze({
  tiny: { name: 'tiny', nLayer: 2, nHead: 4, nEmbd: 64, nPositions: 1024, vocabSize: GPT2_VOCAB, blockScale: 12 },
  distilgpt2: {
    name: 'distilgpt2',
    nLayer: 6,
    nHead: 12,
    nEmbd: 768,
    nPositions: 1024,
    vocabSize: GPT2_VOCAB,
    blockScale: 1,
  },
  gpt2: { name: 'gpt2', nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024, vocabSize: GPT2_VOCAB, blockScale: 1 },
});

/** GPT-2's end-of-text token, used as BOS, EOS and (for batching) padding. */
export const GPT2_EOS_TOKEN_ID = 50256;

/** Number of parameters of a preset (tied LM head counted once), for progress and documentation. */
export function parameterCount(p: ModelPreset): number {
  const c = p.nEmbd;
  const perBlock = 2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c);
  return p.vocabSize * c + p.nPositions * c + p.nLayer * perBlock + 2 * c;
}
