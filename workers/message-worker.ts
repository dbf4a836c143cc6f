/**
 * Entry point of a message worker: loads configuration and the model, starts the batch loop and stops it cleanly
 * on SIGTERM or SIGINT (the batch in flight is finished first). Run as many as the load needs.
 */
import { failStart, startProcess } from '../src/config/process-start.js';
import { createGenerator } from '../src/generation/create-generator.js';
import { fetchModel } from '../src/models/model-fetcher.js';
import { resolveModel } from '../src/models/model-resolver.js';
import { loadIntentCatalog } from '../src/intent/intent-file.js';
import { startWorkerApp } from '../src/pipeline/worker-app.js';

const { config, log } = startProcess('ava-worker');

try {
  // Checked before the model loads, so a bad intents file fails in milliseconds, not after a model load.
  const intents = await loadIntentCatalog(config.intents.file);
  const model = await resolveModel(config.model.id, {
    modelsDir: config.model.dir,
    allowRemote: config.model.allowRemote,
    fetch: (id, dir) => fetchModel(id, dir, { hubHost: config.model.hubHost }),
  });
  const generator = await createGenerator(config, model);
  // A generator that broke for good fails every request: exit non-zero so that the supervisor starts a fresh process;
  // the jobs of the batches in flight are not acknowledged and go to another worker when their locks expire.
  generator.onFatal?.((err) => {
    log.fatal({ err }, 'the generator stopped after a failure of its own; exiting');
    process.exit(1);
  });
  // The signals are handled from the start: the loop may take a batch before the last subsystem has started, and a
  // SIGTERM then must finish that batch, not kill the process.
  const starting = startWorkerApp(config, generator, log, intents);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: finishing the batch in flight');
    const started = await starting.catch(() => undefined);
    await started?.stop();
    await generator.close();
    log.info('worker stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await starting;
  log.info(
    {
      queue: config.queue.name,
      db: config.storage.dbName,
      model: generator.model,
      numerics: generator.numerics,
      generator: config.engine.generator,
      batchSize: config.queue.batchSize,
    },
    'worker ready',
  );
} catch (err) {
  failStart(log, 'worker', err);
}
