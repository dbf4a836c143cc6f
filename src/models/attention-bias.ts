import { ElemType, type OnnxGraphBuilder } from './onnx-graph-builder.js';

/**
 * Additive attention bias [B, 1, T, S]: 0 where query t (absolute position P + t) may see key j — j ≤ P + t and
 * attention_mask[b, j] = 1 — and a large negative number elsewhere, so padded slots get zero weight. A fully masked
 * row (a left-padding query) becomes uniform instead of NaN; its output is never read.
 */
export function attentionBias(g: OnnxGraphBuilder, inputIds: string, attentionMask: string): string {
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  const t = g.op('Gather', [g.op('Shape', [inputIds]), one], { axis: 0 }); // scalar T
  const s = g.op('Gather', [g.op('Shape', [attentionMask]), one], { axis: 0 }); // scalar S
  const pastLen = g.op('Sub', [s, t]); // scalar P
  const keyPos = g.op('Range', [zero, s, one]); // [S]
  const queryPos = g.op('Unsqueeze', [g.op('Range', [pastLen, s, one]), g.int64([1])]); // [T, 1]
  const causal = g.op('LessOrEqual', [keyPos, queryPos]); // [T, S]
  const keep = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: ElemType.BOOL }), g.int64([1, 2])]); // [B, 1, 1, S]
  const allowed = g.op('And', [causal, keep]); // [B, 1, T, S]
  return g.op('Where', [allowed, g.float(0), g.float(-1e9)]);
}
