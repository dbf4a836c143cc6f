import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';

/** Revision of a model directory: the first 12 hex digits of the SHA-256 of its ONNX graph. */
export async function modelRevision(modelDir: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path.join(modelDir, 'onnx', 'model.onnx'))) hash.update(chunk as Buffer);
  return hash.digest('hex').slice(0, 12);
}
