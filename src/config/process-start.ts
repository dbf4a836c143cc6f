import type { Logger } from '../logging/logger.js';
import { createLogger } from '../logging/logger.js';
import { AvaError } from '../errors/errors.js';
import { loadConfig, type AvaConfig } from './config.js';

/**
 * Start-up of a long-running process (worker, API): the configuration, or one line on stderr and exit 1; then the
 * process's logger.
 */
export function startProcess(name: string): { config: AvaConfig; log: Logger } {
  let config: AvaConfig;
  try {
    config = loadConfig();
  } catch (err) {
    process.stderr.write(`${err instanceof AvaError ? err.toLine() : String(err)}\n`);
    process.exit(1);
  }
  return { config, log: createLogger({ level: config.log.level, name }) };
}

/** Logs why the process could not start — code, message and hint on one line — and exits 1. */
export function failStart(log: Logger, what: string, err: unknown): never {
  const fields = err instanceof AvaError ? { code: err.code, hint: err.hint } : {};
  log.fatal({ err, ...fields }, `${what} failed to start: ${err instanceof AvaError ? err.toLine() : String(err)}`);
  process.exit(1);
}
