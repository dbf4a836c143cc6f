import onnxProto from 'onnx-proto';
import { ModelLoadError } from '../errors/errors.js';

const { onnx } = onnxProto;
type Tensor = onnxProto.onnx.ITensorProto;
const DT = onnx.TensorProto.DataType;

/**
 * The float32 weights of an exported model, by their Hugging Face names, however the exporter stored them:
 * - as float initializers under their own names;
 * - behind `Identity` nodes: torch's exporter keeps one initializer for identical tensors (untrained or tied
 *   parameters) and names the others as Identity outputs of it;
 * - quantized, in the layout of onnxruntime's `quantize_dynamic` (what transformers.js users hold as
 *   `model_quantized.onnx`): `<name>_quantized` (uint8 or int8) with `<name>_scale` and `<name>_zero_point`, per tensor
 *   or per output channel, read back as (q − zero point) · scale.
 */
export class ExportWeights {
  private readonly initializers: Map<string, Tensor>;
  /** Identity output → its input, for names the exporter merged into another tensor. */
  private readonly aliases = new Map<string, string>();
  /** The node that writes each tensor. */
  private readonly producers = new Map<string, onnxProto.onnx.INodeProto>();

  constructor(
    model: onnxProto.onnx.IModelProto,
    /** The file, for error messages. */
    private readonly source: string,
  ) {
    this.initializers = new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
    for (const node of model.graph?.node ?? []) {
      if (node.opType === 'Identity' && node.input?.[0] && node.output?.[0])
        this.aliases.set(node.output[0], node.input[0]);
      for (const out of node.output ?? []) this.producers.set(out, node);
    }
  }

  /**
   * The LM head, [C, V] row-major, when it is its own tensor: an initializer (torch writes `onnx::MatMul_NNN`) or one
   * read back through DequantizeLinear. `'tied'` when the logits are the token embedding transposed in the graph;
   * undefined when the graph's `logits` do not come from a MatMul the reader recognises.
   */
  lmHead(): Float32Array | 'tied' | undefined {
    const logits = this.producers.get('logits');
    if (logits?.opType !== 'MatMul' || !logits.input?.[1]) return undefined;
    const head = logits.input[1];
    const node = this.producers.get(head);
    if (
      node?.opType === 'Transpose' &&
      node.input?.[0] &&
      this.resolve(node.input[0]) === this.resolve('transformer.wte.weight')
    )
      return 'tied';
    if (node?.opType === 'DequantizeLinear' && node.input?.[0] && node.input[1]) {
      const q = this.initializers.get(node.input[0]);
      const scale = this.initializers.get(node.input[1]);
      const zero = node.input[2] ? this.initializers.get(node.input[2]) : undefined;
      if (q && scale)
        return dequantize(
          q,
          floatsOf(scale, this.source),
          zero ? integersOf(zero, this.source) : undefined,
          this.source,
        );
      return undefined;
    }
    return this.get(head);
  }

  /** Whether the export holds its weights quantized. */
  get quantized(): boolean {
    return [...this.initializers.keys()].some((n) => n.endsWith('_quantized'));
  }

  /** The weight `name` as float32; undefined when the export has no such weight in any of the layouts above. */
  get(name: string): Float32Array | undefined {
    const resolved = this.resolve(name);
    const plain = this.initializers.get(resolved);
    if (plain) return floatsOf(plain, this.source);
    const q = this.initializers.get(`${resolved}_quantized`);
    const scale = this.initializers.get(`${resolved}_scale`);
    const zero = this.initializers.get(`${resolved}_zero_point`);
    if (q && scale)
      return dequantize(q, floatsOf(scale, this.source), zero ? integersOf(zero, this.source) : undefined, this.source);
    return undefined;
  }

  /** Follows Identity aliases to the tensor that holds the data. */
  private resolve(name: string): string {
    let current = name;
    for (
      let hops = 0;
      !this.initializers.has(current) && !this.initializers.has(`${current}_quantized`) && this.aliases.has(current);
      hops++
    ) {
      if (hops > 64) throw new ModelLoadError(`${this.source}: the Identity nodes naming ${name} form a loop`);
      current = this.aliases.get(current)!;
    }
    return current;
  }
}

/** (q − zero point) · scale, per tensor, per column (output channel of a [in, out] weight) or per row. */
function dequantize(q: Tensor, scale: Float32Array, zero: Int32Array | undefined, source: string): Float32Array {
  const values = integersOf(q, source);
  const dims = (q.dims ?? []).map(Number);
  const cols = dims.length >= 2 ? dims[dims.length - 1] : values.length;
  const rows = values.length / cols;
  const out = new Float32Array(values.length);
  const perColumn = scale.length === cols && scale.length > 1;
  const perRow = !perColumn && scale.length === rows && scale.length > 1;
  if (scale.length !== 1 && !perColumn && !perRow)
    throw new ModelLoadError(`${source}: ${q.name} has ${scale.length} scales for a ${dims.join('×')} tensor`);
  for (let i = 0; i < values.length; i++) {
    const k = perColumn ? i % cols : perRow ? Math.floor(i / cols) : 0;
    out[i] = (values[i] - (zero ? zero[zero.length === 1 ? 0 : k] : 0)) * scale[k];
  }
  return out;
}

function floatsOf(t: Tensor, source: string): Float32Array {
  if (t.dataType !== DT.FLOAT)
    throw new ModelLoadError(`${source}: weight ${t.name} is of ONNX data type ${t.dataType}, not float32`);
  if (t.rawData && t.rawData.length > 0) {
    // Copy: the protobuf's byte view may not be 4-byte aligned.
    return new Float32Array(Uint8Array.from(t.rawData).buffer);
  }
  if (t.floatData && t.floatData.length > 0) return Float32Array.from(t.floatData);
  if ((t.dims ?? []).length === 0 || (t.dims ?? []).some((d) => Number(d) === 0)) return new Float32Array(0);
  throw new ModelLoadError(
    `${source}: weight ${t.name} has no inline data (external data files are not supported yet)`,
  );
}

/** uint8 or int8 tensor values as integers. */
function integersOf(t: Tensor, source: string): Int32Array {
  if (t.dataType !== DT.UINT8 && t.dataType !== DT.INT8)
    throw new ModelLoadError(
      `${source}: ${t.name} is of ONNX data type ${t.dataType}; quantized weights must be uint8 or int8`,
    );
  if (t.rawData && t.rawData.length > 0) {
    const bytes = Uint8Array.from(t.rawData);
    return t.dataType === DT.INT8 ? Int32Array.from(new Int8Array(bytes.buffer)) : Int32Array.from(bytes);
  }
  // Small tensors (zero points) may come as int32Data.
  if (t.int32Data && t.int32Data.length > 0) return Int32Array.from(t.int32Data);
  throw new ModelLoadError(`${source}: ${t.name} has no inline data`);
}
