/** The architecture of a Llama-family decoder, from its Hugging Face `config.json` or GGUF metadata. */
export interface LlamaShape {
  readonly family: 'llama';
  readonly name: string;
  readonly nLayer: number;
  /** Query heads. */
  readonly nHead: number;
  /** Key/value heads (grouped-query attention: each serves nHead / nKvHead query heads). */
  readonly nKvHead: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly headDim: number;
  readonly vocabSize: number;
  /** Longest sequence the model was trained on (`max_position_embeddings`). */
  readonly window: number;
  readonly ropeTheta: number;
  readonly rmsEps: number;
  /** The LM head is the token embedding (no `lm_head.weight`). */
  readonly tiedEmbeddings: boolean;
  /** q, k and v projections have biases (Qwen2). */
  readonly attentionBias: boolean;
}

/** The Hugging Face `config.json` of a shape, as transformers (Python and JS) read it. */
export function llamaConfigJson(
  s: LlamaShape,
  tokens: { bos: number; eos: number },
  modelType: 'llama' | 'qwen2' = 'llama',
): Record<string, unknown> {
  return {
    architectures: [modelType === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: modelType,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.nLayer,
    num_attention_heads: s.nHead,
    num_key_value_heads: s.nKvHead,
    head_dim: s.headDim,
    vocab_size: s.vocabSize,
    max_position_embeddings: s.window,
    rope_theta: s.ropeTheta,
    rms_norm_eps: s.rmsEps,
    tie_word_embeddings: s.tiedEmbeddings,
    attention_bias: s.attentionBias,
    hidden_act: 'silu',
    bos_token_id: tokens.bos,
    eos_token_id: tokens.eos,
    torch_dtype: 'float32',
    use_cache: true,
  };
}
