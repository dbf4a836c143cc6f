import { spawn } from 'node:child_process';
import { SpeechError } from '../errors/errors.js';

/**
 * Runs a command-line audio tool with `input` on stdin and returns its stdout, rejecting with {@link SpeechError}
 * when it cannot start (with `hint`), exits non-zero or runs past `timeoutMs` (then it is killed).
 */
export function runTool(command: string, args: readonly string[], input: string | Buffer, timeoutMs: number, hint: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new SpeechError(`${command} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(new SpeechError(`cannot run ${command}: ${cause.message}`, { cause, hint }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new SpeechError(`${command} failed (exit ${code}): ${stderr.trim().slice(0, 200) || 'no message'}`));
    });
    // A child that exits early closes its stdin; its exit status, reported on close, says why.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}
