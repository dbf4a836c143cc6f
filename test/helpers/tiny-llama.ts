import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { convertLlamaModel } from '../../src/models/llama-converter.js';
import { SeededNormal } from '../../src/models/seeded-normal.js';
import { quantizeBlocks, writeGguf, type GgufTensor } from './gguf-writer.js';

/** The forged tiny Llama: grouped-query attention (4 query heads over 2 key/value heads), tied embeddings. */
export const TINY_LLAMA = { nLayer: 2, hidden: 64, nHead: 4, nKvHead: 2, intermediate: 128, window: 512 };

/** ChatML, as SmolLM2's GGUF carries it (with its default system message). */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
/** Merges of the byte-level vocabulary (GPT-2's 'Ġ' is a leading space). */
const MERGES = ['Ġ t', 'h e', 'Ġt he', 'i n', 'e r', 'a n', 'Ġ a', 'o u', 'Ġ s', 'r e', 'o n', 'Ġ w', 'i s', 'Ġ i'];

/** GPT-2's byte-to-character table: printable bytes stand for themselves, the rest are shifted above 255. */
export function byteAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let shifted = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCharCode(printable(b) ? b : 256 + shifted++));
}

/**
 * Writes a tiny Llama as a GGUF file (seeded random weights in F32, F16, Q8_0, Q4_0 and Q4_1, a byte-level BPE
 * vocabulary with ChatML's special tokens and template) and converts it with the product's converter, so the whole
 * GGUF path runs in tests in a second. Returns the model folder; `cleanup` removes it.
 */
export async function forgeTinyLlama(seed = 7): Promise<{ dir: string; gguf: string; cleanup: () => Promise<void> }> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'ava-tiny-llama-'));
  const s = TINY_LLAMA;
  const D = s.hidden / s.nHead;
  const tokens = [...SPECIALS, ...byteAlphabet(), ...MERGES.map((m) => m.replace(' ', ''))];
  const normal = new SeededNormal(seed);
  const random = (n: number, std: number) => Float32Array.from({ length: n }, () => normal.next() * std);
  const tensors: GgufTensor[] = [];
  // GGUF dims are innermost first: a [out, in] weight is listed [in, out].
  const add = (
    name: string,
    rows: number,
    cols: number,
    type: 'F32' | 'F16' | 'Q8_0' | 'Q4_0' | 'Q4_1',
    std: number,
  ) => {
    const values = std === 0 ? new Float32Array(rows * cols).fill(1) : random(rows * cols, std);
    const typeId = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8 }[type];
    tensors.push({ name, dims: rows === 1 ? [cols] : [cols, rows], type: typeId, data: quantizeBlocks(type, values) });
  };
  add('token_embd.weight', tokens.length, s.hidden, 'Q8_0', 1);
  add('output_norm.weight', 1, s.hidden, 'F32', 0);
  for (let i = 0; i < s.nLayer; i++) {
    const b = `blk.${i}`;
    add(`${b}.attn_norm.weight`, 1, s.hidden, 'F32', 0);
    add(`${b}.ffn_norm.weight`, 1, s.hidden, 'F32', 0);
    add(`${b}.attn_q.weight`, s.nHead * D, s.hidden, 'Q4_1', 0.3);
    add(`${b}.attn_k.weight`, s.nKvHead * D, s.hidden, 'Q4_0', 0.3);
    add(`${b}.attn_v.weight`, s.nKvHead * D, s.hidden, 'F16', 0.3);
    add(`${b}.attn_output.weight`, s.hidden, s.nHead * D, 'Q8_0', 0.3);
    add(`${b}.ffn_gate.weight`, s.intermediate, s.hidden, 'Q4_1', 0.3);
    add(`${b}.ffn_up.weight`, s.intermediate, s.hidden, 'Q8_0', 0.3);
    add(`${b}.ffn_down.weight`, s.hidden, s.intermediate, 'F32', 0.2);
  }
  const gguf = path.join(work, 'tiny-llama.gguf');
  await writeGguf(
    gguf,
    {
      'general.architecture': { type: 'string', value: 'llama' },
      'general.languages': { type: 'strings', value: ['en'] },
      'llama.block_count': { type: 'u32', value: s.nLayer },
      'llama.context_length': { type: 'u32', value: s.window },
      'llama.embedding_length': { type: 'u32', value: s.hidden },
      'llama.feed_forward_length': { type: 'u32', value: s.intermediate },
      'llama.attention.head_count': { type: 'u32', value: s.nHead },
      'llama.attention.head_count_kv': { type: 'u32', value: s.nKvHead },
      'llama.rope.freq_base': { type: 'f32', value: 10_000 },
      'llama.attention.layer_norm_rms_epsilon': { type: 'f32', value: 1e-5 },
      'llama.rope.dimension_count': { type: 'u32', value: D },
      'tokenizer.ggml.model': { type: 'string', value: 'gpt2' },
      'tokenizer.ggml.pre': { type: 'string', value: 'smollm' },
      'tokenizer.ggml.tokens': { type: 'strings', value: tokens },
      'tokenizer.ggml.token_type': { type: 'i32s', value: tokens.map((_, i) => (i < SPECIALS.length ? 3 : 1)) },
      'tokenizer.ggml.merges': { type: 'strings', value: MERGES },
      'tokenizer.ggml.bos_token_id': { type: 'u32', value: 1 },
      'tokenizer.ggml.eos_token_id': { type: 'u32', value: 2 },
      'tokenizer.ggml.add_bos_token': { type: 'bool', value: false },
      'tokenizer.chat_template': { type: 'string', value: CHATML_TEMPLATE },
    },
    tensors,
  );
  const dir = path.join(work, 'tiny-llama');
  await convertLlamaModel({ from: gguf, outDir: dir });
  return { dir, gguf, cleanup: () => rm(work, { recursive: true, force: true }) };
}
