import { spawn } from 'node:child_process';
import { SpeechError, type AvaError } from '../errors/errors.js';

/** Makes the error a tool's failure rejects with: `started` is false when the tool could not be run at all. */
export type ToolFailure = (message: string, started: boolean, options: { hint?: string; cause?: unknown }) => AvaError;

const speechFailure: ToolFailure = (message, _started, options) => new SpeechError(message, options);

/** What a tool wrote: its stdout, and its stderr (where ffmpeg describes the streams it read). */
export interface ToolOutput {
  out: Buffer;
  log: string;
}

/**
 * Runs a command-line audio tool with `input` on stdin and returns what it wrote, rejecting with `fail`'s error
 * ({@link SpeechError} by default) when it cannot start (with `hint`), exits non-zero or runs past `timeoutMs`
 * (then it is killed).
 */
export function runTool(
  command: string,
  args: readonly string[],
  input: string | Buffer,
  timeoutMs: number,
  hint: string,
  fail: ToolFailure = speechFailure,
): Promise<ToolOutput> {
  return new Promise<ToolOutput>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(fail(`${command} did not finish within ${timeoutMs} ms`, true, {}));
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    // Bounded: ffmpeg at info level writes a few lines per stream; a runaway tool must not fill memory.
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 64_000) stderr += c.toString();
    });
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(fail(`cannot run ${command}: ${cause.message}`, false, { cause, hint }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ out: Buffer.concat(chunks), log: stderr });
      else reject(fail(`${command} failed (exit ${code}): ${lastLines(stderr)}`, true, {}));
    });
    // A child that exits early closes its stdin; its exit status, reported on close, says why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** The end of a tool's log, where ffmpeg says why it stopped. */
function lastLines(log: string): string {
  const text = log.trim();
  return text ? text.slice(-300) : 'no message';
}
