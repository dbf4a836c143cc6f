import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths whose values are never logged: credentials inside URLs, tokens and authorisation headers, wherever they
 * appear in a log object.
 */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'redisUrl',
  'mongoUrl',
  '*.redisUrl',
  '*.mongoUrl',
];

/** The process's root logger: pino JSON lines on stdout (or `destination`), secrets redacted. */
export function createLogger(opts: { level: string; name?: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      name: opts.name ?? 'ava',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
