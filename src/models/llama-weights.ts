import { ModelLoadError } from '../errors/errors.js';
import type { GgufFile } from './gguf-file.js';
import type { LlamaShape } from './llama-shape.js';
import type { LlamaWeightSource } from './llama-graph.js';
import type { SafetensorsFile } from './safetensors-file.js';

/** Architectures read from GGUF: llama.cpp permutes Llama's q and k rows for its RoPE, not Qwen2's. */
const GGUF_ARCHITECTURES = ['llama', 'qwen2'] as const;
export type GgufArchitecture = (typeof GGUF_ARCHITECTURES)[number];

/** A Llama-family shape from GGUF metadata (`<arch>.block_count`, …) and its tensors. */
export function llamaShapeFromGguf(gguf: GgufFile, name: string): { shape: LlamaShape; arch: GgufArchitecture } {
  const arch = gguf.get('general.architecture', 'string') as GgufArchitecture;
  if (!GGUF_ARCHITECTURES.includes(arch))
    throw new ModelLoadError(`${gguf.file}: architecture ${JSON.stringify(arch)} is not a supported Llama-family one`);
  const num = (key: string, fallback?: number) =>
    gguf.optional(`${arch}.${key}`) === undefined && fallback !== undefined
      ? fallback
      : gguf.get(`${arch}.${key}`, 'number');
  const nHead = num('attention.head_count');
  const hidden = num('embedding_length');
  const headDim = num('attention.key_length', hidden / nHead);
  if (num('rope.dimension_count', headDim) !== headDim)
    throw new ModelLoadError(`${gguf.file}: partial rotary embeddings are not supported`);
  return {
    arch,
    shape: {
      family: 'llama',
      name,
      nLayer: num('block_count'),
      nHead,
      nKvHead: num('attention.head_count_kv', nHead),
      hidden,
      intermediate: num('feed_forward_length'),
      headDim,
      vocabSize: gguf.get('tokenizer.ggml.tokens', 'array').length,
      window: num('context_length'),
      ropeTheta: num('rope.freq_base', 10_000),
      // Stored as float32 (1e-5 reads 9.99999974e-6); the shortest decimal is what the model was trained with.
      rmsEps: Number(num('attention.layer_norm_rms_epsilon').toPrecision(7)),
      tiedEmbeddings: !gguf.tensors.has('output.weight'),
      attentionBias: gguf.tensors.has('blk.0.attn_q.bias'),
    },
  };
}

/** GGUF tensor names by Hugging Face name. */
function ggufName(hfName: string): string {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'token_embd.weight',
    'model.norm.weight': 'output_norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (fixed[hfName]) return fixed[hfName];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  const parts: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm.weight',
    'post_attention_layernorm.weight': 'ffn_norm.weight',
    'self_attn.q_proj.weight': 'attn_q.weight',
    'self_attn.k_proj.weight': 'attn_k.weight',
    'self_attn.v_proj.weight': 'attn_v.weight',
    'self_attn.o_proj.weight': 'attn_output.weight',
    'self_attn.q_proj.bias': 'attn_q.bias',
    'self_attn.k_proj.bias': 'attn_k.bias',
    'self_attn.v_proj.bias': 'attn_v.bias',
    'mlp.gate_proj.weight': 'ffn_gate.weight',
    'mlp.up_proj.weight': 'ffn_up.weight',
    'mlp.down_proj.weight': 'ffn_down.weight',
  };
  if (!m || !parts[m[2]]) throw new ModelLoadError(`no GGUF tensor corresponds to ${hfName}`);
  return `blk.${m[1]}.${parts[m[2]]}`;
}

/**
 * Weights of a GGUF file by Hugging Face name, dequantized to float32. GGUF lists dims innermost first, so its
 * [in, out] is Hugging Face's row-major [out, in] as is. For Llama, llama.cpp stored q and k with each head's rows
 * interleaved for its pairwise RoPE; they are put back in the rotate-half order the graph uses.
 */
export function ggufWeights(gguf: GgufFile, shape: LlamaShape, arch: GgufArchitecture): LlamaWeightSource {
  return (name, dims) => {
    const source = ggufName(name);
    const info = gguf.tensors.get(source);
    if (!info) throw new ModelLoadError(`${gguf.file} has no tensor ${source} (for ${name})`);
    const want = dims.reduce((a, b) => a * b, 1);
    const reversed = [...info.dims].reverse();
    if (reversed.length !== dims.length || reversed.some((d, i) => d !== dims[i]))
      throw new ModelLoadError(`${gguf.file}: tensor ${source} is [${reversed}], expected [${dims}] for ${name}`);
    const data = gguf.float32(source);
    if (data.length !== want) throw new ModelLoadError(`${gguf.file}: tensor ${source} holds ${data.length} values`);
    if (arch !== 'llama') return data;
    if (name.endsWith('q_proj.weight')) return unpermuteRope(data, shape.nHead, shape.headDim, dims[1]);
    if (name.endsWith('k_proj.weight')) return unpermuteRope(data, shape.nKvHead, shape.headDim, dims[1]);
    return data;
  };
}

/**
 * Undoes llama.cpp's `permute` of a [heads·D, cols] projection: its row h·D + 2j + s holds Hugging Face's row
 * h·D + s·D/2 + j (s ∈ {0, 1}, j < D/2).
 */
export function unpermuteRope(w: Float32Array, heads: number, D: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = D / 2;
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < half; j++)
      for (let s = 0; s < 2; s++) {
        const from = (h * D + 2 * j + s) * cols;
        out.set(w.subarray(from, from + cols), (h * D + s * half + j) * cols);
      }
  return out;
}

/** A Llama-family shape from a Hugging Face `config.json` (model_type llama or qwen2). */
export function llamaShapeFromConfig(c: Record<string, unknown>, name: string, where: string): LlamaShape {
  const num = (k: string, fallback?: number): number => {
    const v = c[k] ?? fallback;
    if (typeof v !== 'number') throw new ModelLoadError(`${where}/config.json has no numeric ${k}`);
    return v;
  };
  if (c.rope_scaling !== undefined && c.rope_scaling !== null)
    throw new ModelLoadError(`${where}/config.json: rope_scaling is not supported`);
  const nHead = num('num_attention_heads');
  const hidden = num('hidden_size');
  return {
    family: 'llama',
    name,
    nLayer: num('num_hidden_layers'),
    nHead,
    nKvHead: num('num_key_value_heads', nHead),
    hidden,
    intermediate: num('intermediate_size'),
    headDim: num('head_dim', hidden / nHead),
    vocabSize: num('vocab_size'),
    window: num('max_position_embeddings'),
    ropeTheta: num('rope_theta', 10_000),
    rmsEps: num('rms_norm_eps', 1e-6),
    tiedEmbeddings: c.tie_word_embeddings === true,
    attentionBias: c.model_type === 'qwen2' || c.attention_bias === true,
  };
}

/** Weights of a safetensors file by name, read in full up front (the graph builder pulls them synchronously). */
export async function safetensorsWeights(file: SafetensorsFile): Promise<LlamaWeightSource> {
  const loaded = new Map<string, Float32Array>();
  for (const name of file.names) loaded.set(name, await file.float32(name, file.shapeOf(name) ?? []));
  return (name, dims) => {
    const data = loaded.get(name);
    if (!data) throw new ModelLoadError(`the safetensors weights have no tensor ${name}`);
    if (data.length !== dims.reduce((a, b) => a * b, 1))
      throw new ModelLoadError(`tensor ${name} does not have shape [${dims}]`);
    return data;
  };
}
