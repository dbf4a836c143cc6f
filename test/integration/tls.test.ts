import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { RedisKeys } from '../../src/queue/redis-keys.js';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadConfig, type AvaConfig } from '../../src/config/config.js';
import { ConfigError, ServiceUnavailableError } from '../../src/errors/errors.js';
import { InstantGenerator } from '../../src/generation/instant-generator.js';
import { TextTokenizer } from '../../src/generation/text-tokenizer.js';
import { startWorkerApp } from '../../src/pipeline/worker-app.js';
import { MessageProducer } from '../../src/queue/message-producer.js';
import { connectRedis } from '../../src/queue/redis-connection.js';
import { Database } from '../../src/storage/database.js';
import { followReplies } from '../../src/connections/reply-waiter.js';
import { FERRETDB_BIN } from '../helpers/ferretdb-server.js';
import { ROOT, TINY_MODEL_DIR } from '../helpers/paths.js';
import { isolatedNames, silentLog } from '../helpers/services.js';
import { stablePort, terminate, waitForPort } from '../helpers/test-ports.js';

const PASSWORD = 'tls-test-password-3f9a';

let dir: string;
let redisPort: number;
let mongoPort: number;
const children: ChildProcess[] = [];

/** A private CA and a server certificate for 127.0.0.1 signed by it, made with openssl. */
function makeCertificates(at: string): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: at, stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=AVA test CA',
  );
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  execFileSync('bash', ['-c', 'printf "subjectAltName=IP:127.0.0.1\\n" > san.ext'], { cwd: at });
  ssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ava-tls-'));
  makeCertificates(dir);
  [redisPort, mongoPort] = [await stablePort(), await stablePort()];
  const [plainMongo, debug] = [await stablePort(), await stablePort()];
  children.push(
    spawn(
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(redisPort),
        '--bind',
        '127.0.0.1',
        '--tls-cert-file',
        'server.crt',
        '--tls-key-file',
        'server.key',
        '--tls-ca-cert-file',
        'ca.crt',
        '--tls-auth-clients',
        'no',
        '--requirepass',
        PASSWORD,
        '--save',
        '',
        '--dir',
        dir,
      ],
      { cwd: dir, stdio: 'ignore' },
    ),
  );
  await mkdir(path.join(dir, 'data'));
  children.push(
    spawn(
      FERRETDB_BIN,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${dir}/data/`,
        `--state-dir=${dir}`,
        `--listen-addr=127.0.0.1:${plainMongo}`,
        `--listen-tls=127.0.0.1:${mongoPort}`,
        `--listen-tls-cert-file=${dir}/server.crt`,
        `--listen-tls-key-file=${dir}/server.key`,
        `--debug-addr=127.0.0.1:${debug}`,
        '--telemetry=disable',
        '--log-level=error',
      ],
      { stdio: 'ignore' },
    ),
  );
  expect(await waitForPort(redisPort, 5_000)).toBe(true);
  expect(await waitForPort(mongoPort, 10_000)).toBe(true);
});

afterAll(async () => {
  for (const c of children) await terminate(c);
  await rm(dir, { recursive: true, force: true });
});

function tlsConfig(extra: Record<string, string> = {}): AvaConfig {
  const names = isolatedNames('tls');
  return loadConfig(
    {},
    {
      AVA_QUEUE_NAME: names.queueName,
      AVA_DB_NAME: names.dbName,
      AVA_REDIS_URL: `rediss://:${PASSWORD}@127.0.0.1:${redisPort}`,
      AVA_REDIS_TLS_CA_FILE: path.join(dir, 'ca.crt'),
      AVA_MONGO_URL: `mongodb://127.0.0.1:${mongoPort}/?tls=true&tlsCAFile=${encodeURIComponent(path.join(dir, 'ca.crt'))}`,
      AVA_INTENTS_FILE: path.join(ROOT, 'test/fixtures/intents-model-only.yaml'),
      AVA_LOG_LEVEL: 'silent',
      ...extra,
    },
  );
}

it('answers a message over TLS to Redis (with a password) and to the database, trusting a private CA', async () => {
  const config = tlsConfig();
  const worker = await startWorkerApp(
    config,
    new InstantGenerator(await TextTokenizer.load(TINY_MODEL_DIR)),
    silentLog,
  );
  const redis = await connectRedis({ url: config.redis.url, tlsCaFile: config.redis.tlsCaFile });
  const producer = new MessageProducer(redis, new RedisKeys(config.queue.prefix, config.queue.name), {
    attempts: 3,
    backoffMs: 100,
  });
  const db = await Database.connect(config.storage.url, config.storage.dbName);
  try {
    await producer.enqueue({ v: 1, messageId: 'tls-1', conversationId: 'tls', userId: 'u', text: 'Hello over TLS' });
    await followReplies(db, ['tls-1'], () => undefined, 20_000);
    expect(await db.replies.findOne({ _id: 'tls-1' })).toMatchObject({
      status: 'replied',
      text: 'Thank you for your message.',
    });
  } finally {
    await worker.stop();
    await producer.close();
    await redis.quit();
    await db.db.dropDatabase();
    await db.close();
  }
});

it('verifies the server: without the CA, with a wrong password or to a database it cannot verify, it refuses, and the password is never in the error', async () => {
  const untrusted = await connectRedis({ url: `rediss://:${PASSWORD}@127.0.0.1:${redisPort}` }).catch(
    (e: unknown) => e,
  );
  expect(untrusted).toBeInstanceOf(ServiceUnavailableError);
  expect((untrusted as Error).message).toMatch(/self[- ]signed|unable to (verify|get local issuer)/i);
  expect((untrusted as Error).message).not.toContain(PASSWORD);
  const wrongPassword = await connectRedis(
    { url: `rediss://:wrong-password@127.0.0.1:${redisPort}`, tlsCaFile: path.join(dir, 'ca.crt') },
    { retryStrategy: () => null },
  ).catch((e: unknown) => e);
  expect((wrongPassword as Error).message).toMatch(/WRONGPASS|invalid password|NOAUTH/i);
  expect((wrongPassword as Error).message).not.toContain('wrong-password');
  const untrustedDb = await Database.connect(`mongodb://127.0.0.1:${mongoPort}/?tls=true`, 'x', 2_000).catch(
    (e: unknown) => e,
  );
  expect(untrustedDb).toBeInstanceOf(ServiceUnavailableError);
});

it('refuses a CA file without a rediss:// URL, or a CA file that does not exist, at start-up', async () => {
  await writeFile(path.join(dir, 'empty.pem'), '');
  expect(() =>
    loadConfig({}, { AVA_REDIS_URL: 'redis://127.0.0.1:6379', AVA_REDIS_TLS_CA_FILE: path.join(dir, 'empty.pem') }),
  ).toThrow(ConfigError);
  expect(() =>
    loadConfig({}, { AVA_REDIS_URL: 'rediss://127.0.0.1:6379', AVA_REDIS_TLS_CA_FILE: path.join(dir, 'nope.pem') }),
  ).toThrow(/no such file/);
});
