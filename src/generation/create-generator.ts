import type { AvaConfig } from '../config/config.js';
import type { ResolvedModel } from '../models/model-resolver.js';
import { EngineGenerator } from './engine-generator.js';
import { InstantGenerator } from './instant-generator.js';
import { PipelineGenerator } from './pipeline-generator.js';
import type { TextGenerator } from './text-generator.js';
import { TextTokenizer } from './text-tokenizer.js';

/**
 * The generator the configuration asks for, with the model's tokenizer: the continuous-batching engine (default),
 * the transformers.js pipeline, or the model-less instant generator for measuring the pipeline itself.
 */
export async function createGenerator(
  config: Pick<AvaConfig, 'engine' | 'runtime'>,
  model: ResolvedModel,
): Promise<TextGenerator> {
  const tokenizer = await TextTokenizer.load(model.dir);
  if (config.engine.generator === 'instant') return new InstantGenerator(tokenizer);
  if (config.engine.generator === 'pipeline')
    return PipelineGenerator.load({
      id: model.id,
      dir: model.dir,
      tokenizer,
      intraOpThreads: config.runtime.intraOpThreads,
    });
  return EngineGenerator.load({
    id: model.id,
    dir: model.dir,
    tokenizer,
    executionProvider: config.runtime.executionProvider,
    intraOpThreads: config.runtime.intraOpThreads,
    maxBatchSize: config.engine.maxBatch,
    maxCachedTokens: config.engine.maxCachedTokens,
    precision: config.engine.precision,
    int8Kernel: config.runtime.int8Kernel,
    ...(config.runtime.cacheDir ? { cacheDir: config.runtime.cacheDir } : {}),
  });
}
