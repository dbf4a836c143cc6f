import { randomUUID } from 'node:crypto';
import { AvaError, StorageError, errorMessageOf } from '../errors/errors.js';

/**
 * One pass of a batch through the stages: when it started, the attempt its reply streams carry (a retried message
 * streams again under a new one), and where its time went, logged with it (on a slow database the reads and writes,
 * not the model, bound a worker).
 */
export class BatchPass {
  readonly startedAt = new Date();
  readonly attempt = randomUUID().slice(0, 8);
  readonly steps: Record<string, number> = {};
  private last = performance.now();

  /** Records the time since the previous step under `name`. */
  lap(name: string): void {
    const now = performance.now();
    this.steps[name] = Math.round(now - this.last);
    this.last = now;
  }

  /**
   * Awaits a step that reads or writes Redis or the database, and records its time. A failure that carries no kind
   * of its own (a driver's error) becomes a transient StorageError naming the step, so the batch is retried.
   */
  async io<T>(name: string, work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw err instanceof AvaError ? err : new StorageError(`${name}: ${errorMessageOf(err)}`, { cause: err });
    } finally {
      this.lap(name);
    }
  }
}
