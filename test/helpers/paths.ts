import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The tiny model every test runs on, forged by the global setup. */
export const TINY_MODEL_DIR = path.join(ROOT, 'models', 'tiny');
