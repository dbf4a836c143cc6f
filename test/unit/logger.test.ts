import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { redactUrl } from '../../src/logging/redact.js';

it('redacts credentials wherever they appear in a log object', () => {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const log = createLogger({ level: 'info', destination: sink });
  log.info(
    {
      redisUrl: 'redis://u:pw1@h',
      config: { mongoUrl: 'mongodb://u:pw2@h', password: 'pw3' },
      authorization: 'Bearer pw4',
      token: 'pw5',
      req: { headers: { authorization: 'Bearer pw6' } },
    },
    'hello',
  );
  for (const secret of ['pw1', 'pw2', 'pw3', 'pw4', 'pw5', 'pw6']) expect(out).not.toContain(secret);
  expect(out).toContain('[redacted]');
});

it('hides the password of a URL in messages', () => {
  expect(redactUrl('mongodb://ava:hunter2@db.example:27017/?tls=true')).toBe(
    'mongodb://ava:***@db.example:27017/?tls=true',
  );
  expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  // Redis URLs usually carry a password with an empty user name.
  expect(redactUrl('rediss://:s3cret@cache.example:6380/0')).toBe('rediss://:***@cache.example:6380/0');
  expect(redactUrl('redis://default:pa:ss/word@h:6379')).toBe('redis://default:***@h:6379');
});
