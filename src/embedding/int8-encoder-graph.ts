import { readFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { ModelLoadError } from '../errors/errors.js';
import { ExportWeights } from '../models/export-weights.js';
import { BERT_OPSET, buildBertGraph, transpose } from '../models/bert-graph.js';
import { readBertShape } from '../models/encoder-converter.js';
import { cachedFile } from '../models/folder-files.js';
import type { Int8Formulation } from '../models/int8-matmul.js';
import { modelRevision } from '../models/model-revision.js';

/** Bumped whenever the int8 encoder's form changes, so graphs built by an older version are not reused. */
const INT8_ENCODER_VERSION = 1;

/**
 * The int8 form of a sentence encoder converted by `npm run models:encoder`: its float32 graph's weights rebuilt into
 * the same graph with int8 linear layers (per output column, in `formulation`; see bert-graph.ts). Built once and
 * cached in `cacheDir` under the float32 graph's revision, so a changed encoder is built again and the model folder
 * is only read. Returns the int8 graph's path.
 */
export async function ensureInt8EncoderGraph(
  dir: string,
  cacheDir: string,
  formulation: Int8Formulation,
): Promise<string> {
  const revision = await modelRevision(dir);
  const target = path.join(cacheDir, `encoder-${revision}-int8-${formulation}.v${INT8_ENCODER_VERSION}.onnx`);
  return cachedFile(
    target,
    () => int8EncoderGraph(dir, formulation),
    'point AVA_ENGINE_CACHE_DIR at a writable folder, or set AVA_ENCODER_PRECISION=fp32',
  );
}

async function int8EncoderGraph(dir: string, formulation: Int8Formulation): Promise<Uint8Array> {
  const source = path.join(dir, 'onnx', 'model.onnx');
  const shape = await readBertShape(dir);
  let weights: ExportWeights;
  try {
    weights = new ExportWeights(onnxProto.onnx.ModelProto.decode(await readFile(source)), source);
  } catch (cause) {
    throw new ModelLoadError(`${source} is not a readable ONNX model: ${(cause as Error).message}`, { cause });
  }
  const graph = buildBertGraph(
    shape,
    (name, dims) => {
      // A linear layer's weight is held transposed ([in, out]) in the float32 graph; the builder asks for [out, in].
      const plain = weights.get(name);
      const held = plain ? undefined : weights.get(`${name}.T`);
      const data = plain ?? (held && dims.length === 2 ? transpose(held, dims[1], dims[0]) : undefined);
      if (!data)
        throw new ModelLoadError(
          `${source} has no weight named ${name}; only encoders converted by \`npm run models:encoder\` have an int8 form`,
          { hint: 'set AVA_ENCODER_PRECISION=fp32' },
        );
      if (data.length !== dims.reduce((a, b) => a * b, 1))
        throw new ModelLoadError(`${source}: weight ${name} does not have shape [${dims}]`);
      return data;
    },
    { precision: 'int8', formulation },
  );
  return graph.encode({ opset: BERT_OPSET, producer: 'ava-encoder-int8', graphName: 'sentence-encoder-int8' });
}
