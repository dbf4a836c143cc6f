import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelForgeError, ModelLoadError } from '../errors/errors.js';
import { exists, moveIntoPlace } from './folder-files.js';
import { GgufFile } from './gguf-file.js';
import { tokenizerFromGguf } from './gguf-tokenizer.js';
import { buildLlamaGraph, LLAMA_OPSET, type LlamaWeightSource } from './llama-graph.js';
import { llamaConfigJson, type LlamaShape } from './llama-shape.js';
import { ggufWeights, llamaShapeFromConfig, llamaShapeFromGguf, safetensorsWeights } from './llama-weights.js';
import { SafetensorsFile } from './safetensors-file.js';

/** Tokenizer and generation files copied from a Hugging Face folder. */
const COPIED = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];

/** What a conversion wrote. */
export interface LlamaConversion {
  outDir: string;
  shape: LlamaShape;
  parameters: number;
  bytes: number;
}

/**
 * Converts a Llama-family checkpoint — a GGUF file (F32, F16, BF16, Q8_0, Q4_0, Q4_1) or a Hugging Face folder
 * (`config.json`, `model.safetensors`, `tokenizer.json`) — into a model folder in the Hugging Face layout that both
 * transformers.js and the engine load: `config.json`, the tokenizer files (with the chat template), and
 * `onnx/model.onnx`, the text-generation-with-past export with the weights under their Hugging Face names in
 * float32. A GGUF's quantized weights are dequantized, so the folder holds exactly the values llama.cpp computes
 * with. Written into a temporary sibling folder and renamed into place.
 */
export async function convertLlamaModel(opts: {
  from: string;
  outDir: string;
  force?: boolean;
}): Promise<LlamaConversion> {
  const outDir = path.resolve(opts.outDir);
  if (!opts.force && (await exists(outDir)))
    throw new ModelForgeError(`output folder ${outDir} already exists`, { hint: 'pass --force to replace it' });
  const from = path.resolve(opts.from);
  if (!(await exists(from))) throw new ModelForgeError(`${from} does not exist`);
  await mkdir(path.dirname(outDir), { recursive: true });
  const tmp = await mkdtemp(path.join(path.dirname(outDir), `.${path.basename(outDir)}.converting-`));
  await chmod(tmp, 0o755);
  try {
    const name = path.basename(outDir);
    const source = (await stat(from)).isDirectory()
      ? await fromHuggingFaceFolder(from, name, tmp)
      : await fromGguf(from, name, tmp);
    let parameters = 0;
    const counted: LlamaWeightSource = (n, dims) => {
      const data = source.weights(n, dims);
      parameters += data.length;
      return data;
    };
    const graph = buildLlamaGraph(source.shape, counted, 'standard');
    const bytes = graph.encode({ opset: LLAMA_OPSET, producer: 'ava-llama-converter', graphName: name });
    await mkdir(path.join(tmp, 'onnx'));
    await writeFile(path.join(tmp, 'onnx', 'model.onnx'), bytes);
    await moveIntoPlace(tmp, outDir, opts.force ?? false);
    return { outDir, shape: source.shape, parameters, bytes: bytes.byteLength };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof ModelForgeError || err instanceof ModelLoadError) throw err;
    throw new ModelForgeError(`converting ${from} into ${outDir} failed: ${(err as Error).message}`, { cause: err });
  }
}

async function fromGguf(file: string, name: string, out: string) {
  const gguf = await GgufFile.open(file);
  const { shape, arch } = llamaShapeFromGguf(gguf, name);
  const tok = tokenizerFromGguf(gguf, shape.window);
  const json = (f: string, v: unknown) => writeFile(path.join(out, f), JSON.stringify(v, null, 1));
  const languages = gguf.optional('general.languages');
  await json('config.json', {
    ...llamaConfigJson(shape, tok, arch),
    ...(Array.isArray(languages) ? { languages: languages.map(String) } : {}),
  });
  await json('generation_config.json', { bos_token_id: tok.bos, eos_token_id: tok.eos, do_sample: false });
  await json('tokenizer.json', tok.tokenizerJson);
  await json('tokenizer_config.json', tok.tokenizerConfig);
  return { shape, weights: ggufWeights(gguf, shape, arch) };
}

async function fromHuggingFaceFolder(dir: string, name: string, out: string) {
  const configText = await readFile(path.join(dir, 'config.json'), 'utf8').catch(() => {
    throw new ModelForgeError(`${dir} has no config.json`);
  });
  const config = JSON.parse(configText) as Record<string, unknown>;
  if (config.model_type !== 'llama' && config.model_type !== 'qwen2')
    throw new ModelForgeError(
      `${dir}/config.json: model_type ${JSON.stringify(config.model_type)} is not llama or qwen2`,
    );
  const shape = llamaShapeFromConfig(config, name, dir);
  const file = await SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  let weights: LlamaWeightSource;
  try {
    weights = await safetensorsWeights(file);
  } finally {
    await file.close();
  }
  await writeFile(path.join(out, 'config.json'), configText);
  for (const f of COPIED) if (await exists(path.join(dir, f))) await copyFile(path.join(dir, f), path.join(out, f));
  if (!(await exists(path.join(out, 'tokenizer.json')))) throw new ModelForgeError(`${dir} has no tokenizer.json`);
  return { shape, weights };
}
