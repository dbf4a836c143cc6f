import { access } from 'node:fs/promises';
import { forgeModel } from '../../src/models/model-forge.js';
import { TINY_MODEL_DIR } from './paths.js';

/** Forges the tiny model once for the whole run when it is missing (CI starts from a clean clone). */
export default async function setup(): Promise<void> {
  try {
    await access(`${TINY_MODEL_DIR}/onnx/model.onnx`);
  } catch {
    await forgeModel({ preset: 'tiny', outDir: TINY_MODEL_DIR });
  }
}
