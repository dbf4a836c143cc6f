import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** A graph input or output dimension: a fixed size or a symbolic name such as `batch_size`. */
export type Dim = number | string;

/** Attribute values the builder understands; arrays of integers become INTS, of floats FLOATS. */
export type AttrValue =
  number | string | number[] | { floats: number[] } | { int: number } | { float: number } | { graph: Subgraph };

/** A branch of an `If` node, made by {@link OnnxGraphBuilder.branch}. */
export type Subgraph = InstanceType<typeof onnx.GraphProto>;

/** ONNX element types used by GPT-2 graphs. */
export const ElemType = {
  FLOAT: onnx.TensorProto.DataType.FLOAT,
  INT64: onnx.TensorProto.DataType.INT64,
  BOOL: onnx.TensorProto.DataType.BOOL,
  INT8: onnx.TensorProto.DataType.INT8,
  UINT8: onnx.TensorProto.DataType.UINT8,
  INT32: onnx.TensorProto.DataType.INT32,
} as const;

/**
 * Builds an ONNX model through the protobuf definition that `onnx-proto` ships, so the file is encoded by the
 * protobuf library and never by hand. Node outputs get unique names; each call returns the output name(s).
 */
export class OnnxGraphBuilder {
  private nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private counter = 0;
  private readonly domains = new Set<string>();

  /** Declares a graph input. */
  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares a graph output fed by the tensor named `name`. */
  output(name: string, elemType: number, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** Adds a float32 initializer (a weight). The array's bytes are stored as little-endian raw data. */
  weight(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: ElemType.FLOAT,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  /** Adds an int8 initializer (a quantized weight). */
  int8Weight(name: string, dims: number[], data: Int8Array): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: ElemType.INT8,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  /** Adds a uint8 initializer (a quantized weight carried around a zero point). */
  uint8Weight(name: string, dims: number[], data: Uint8Array): string {
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims,
        dataType: ElemType.UINT8,
        rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      }),
    );
    return name;
  }

  /** Adds a uint8 scalar constant (a zero point). */
  uint8(value: number): string {
    const name = `const_u8_${this.counter++}`;
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: [], dataType: ElemType.UINT8, rawData: Uint8Array.of(value) }),
    );
    return name;
  }

  /** Adds an int64 constant initializer (shapes, axes, indices). */
  int64(values: number[], dims: number[] = [values.length]): string {
    const name = `const_i64_${this.counter++}`;
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    this.initializers.push(
      onnx.TensorProto.create({ name, dims, dataType: ElemType.INT64, rawData: new Uint8Array(data.buffer) }),
    );
    return name;
  }

  /** Adds a float32 scalar constant. */
  float(value: number): string {
    const name = `const_f32_${this.counter++}`;
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dims: [],
        dataType: ElemType.FLOAT,
        rawData: new Uint8Array(Float32Array.of(value).buffer),
      }),
    );
    return name;
  }

  /** Adds one node with a single output and returns that output's name (or `outputName` when given). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputName?: string): string {
    return this.opN(opType, inputs, 1, attrs, outputName ? [outputName] : undefined)[0];
  }

  /**
   * Adds one node with `nOutputs` outputs and returns their names. `domain` names an operator set other than the
   * standard one (`com.microsoft` for ONNX Runtime's contributed operators); an empty input name skips an optional
   * input.
   */
  opN(
    opType: string,
    inputs: string[],
    nOutputs: number,
    attrs: Record<string, AttrValue> = {},
    outputNames?: string[],
    domain = '',
  ): string[] {
    const id = this.counter++;
    const outputs = outputNames ?? Array.from({ length: nOutputs }, (_, k) => `${opType.toLowerCase()}_${id}_${k}`);
    if (domain) this.domains.add(domain);
    this.nodes.push(
      onnx.NodeProto.create({
        name: `${opType}_${id}`,
        opType,
        // Only when set: an explicit empty domain would change the bytes of every graph forged before it existed.
        ...(domain ? { domain } : {}),
        input: inputs,
        output: outputs,
        attribute: Object.entries(attrs).map(([name, value]) => attribute(name, value)),
      }),
    );
    return outputs;
  }

  /**
   * A subgraph for an `If` branch: the nodes `build` adds go into it (their names stay unique in the model, and the
   * constants they make are the outer graph's, which a branch may read), and the tensor it returns is its output.
   */
  branch(name: string, build: () => string, output: { elemType: number; dims: Dim[] }): Subgraph {
    const outer = this.nodes;
    this.nodes = [];
    try {
      const result = build();
      return onnx.GraphProto.create({
        name,
        node: this.nodes,
        output: [valueInfo(result, output.elemType, output.dims)],
      });
    } finally {
      this.nodes = outer;
    }
  }

  /** Encodes the model as ONNX protobuf bytes. */
  encode(opts: { opset: number; producer: string; graphName: string }): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer,
      opsetImport: [
        { domain: '', version: opts.opset },
        ...[...this.domains].map((domain) => ({ domain, version: 1 })),
      ],
      graph: onnx.GraphProto.create({
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elemType: number, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, value: AttrValue) {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'string')
    return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? onnx.AttributeProto.create({ name, type: T.INT, i: value })
      : onnx.AttributeProto.create({ name, type: T.FLOAT, f: value });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: T.INTS, ints: value });
  if ('int' in value) return onnx.AttributeProto.create({ name, type: T.INT, i: value.int });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: value.float });
  if ('graph' in value) return onnx.AttributeProto.create({ name, type: T.GRAPH, g: value.graph });
  return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: value.floats });
}
