import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { ModelLoadError } from '../errors/errors.js';
import { ExportWeights } from './export-weights.js';
import { transpose, type BertWeights } from './bert-graph.js';

/** A linear layer's integer product, named after its module by the exporter: `/encoder/layer.0/attention/self/query/MatMul_quant`. */
const LINEAR_NODE = /^\/(encoder\/layer\.\d+\/[a-z_./]+?)\/MatMul_quant$/;

/**
 * The float32 weights of a BERT encoder exported by Hugging Face's exporter and quantized by onnxruntime's
 * `quantize_dynamic` (transformers.js's `model_quantized.onnx`), by their Hugging Face names and in PyTorch's layout.
 * A linear layer's weight is stored under a torch name (`onnx::MatMul_541`) as int8 [in, out] per output column; the
 * name of the node that multiplies by it gives its module. The integer weights are read back exactly as
 * (q − zero point) · scale; the project's own int8 form quantizes them again per column.
 */
export async function quantizedBertWeights(file: string): Promise<BertWeights> {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnxProto.onnx.ModelProto.decode(await readFile(file));
  } catch (cause) {
    throw new ModelLoadError(`${file} is not a readable ONNX model: ${(cause as Error).message}`, { cause });
  }
  const weights = new ExportWeights(model, file);
  const linear = new Map<string, string>();
  for (const node of model.graph?.node ?? []) {
    const module = node.opType === 'MatMulInteger' ? LINEAR_NODE.exec(node.name ?? '')?.[1] : undefined;
    const stored = node.input?.[1]?.replace(/_quantized$/, '');
    if (module && stored) linear.set(`${module.replaceAll('/', '.')}.weight`, stored);
  }
  if (linear.size === 0) throw new ModelLoadError(`${file} has no quantized linear layers named by their modules`);
  return (name, shape) => {
    const stored = linear.get(name);
    const data = stored ? weights.get(stored) : weights.get(name);
    if (!data) throw new ModelLoadError(`${file} has no weight ${name}`);
    if (data.length !== shape.reduce((a, b) => a * b, 1))
      throw new ModelLoadError(`${file}: weight ${name} does not have shape [${shape}]`);
    // Stored [in, out] for MatMul; the graph builder asks for PyTorch's [out, in].
    return stored ? transpose(data, shape[1], shape[0]) : data;
  };
}
