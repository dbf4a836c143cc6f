import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors/errors.js';

describe('config', () => {
  it('has documented defaults and is frozen', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      redis: { url: 'redis://127.0.0.1:6379' },
      storage: { url: 'mongodb://127.0.0.1:27017' },
      queue: { name: 'ava-messages', batchSize: 16, batchWaitMs: 20, conversationOrder: true },
      model: { id: 'smollm2-135m-instruct' },
      api: { tokens: [] },
    });
    expect(c.redis.tlsCaFile).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.queue)).toBe(true);
  });

  it('reads and coerces environment variables', () => {
    const c = loadConfig({
      AVA_BATCH_SIZE: '32',
      AVA_ALLOW_REMOTE_MODELS: 'true',
      AVA_MONGO_URL: 'mongodb://user:pw@db.example:27017/?tls=true',
    });
    expect(c.queue.batchSize).toBe(32);
    expect(c.model.allowRemote).toBe(true);
    expect(c.storage.url).toContain('tls=true');
  });

  it('reads the noise floor as dB below the speech, or off', () => {
    expect(loadConfig({}).voice.noiseFloorDb).toBe(35);
    expect(loadConfig({ AVA_ASR_NOISE_FLOOR: '40' }).voice.noiseFloorDb).toBe(40);
    expect(loadConfig({ AVA_ASR_NOISE_FLOOR: 'off' }).voice.noiseFloorDb).toBeUndefined();
    expect(() => loadConfig({ AVA_ASR_NOISE_FLOOR: '-60' })).toThrow(/AVA_ASR_NOISE_FLOOR="-60"/);
  });

  it('fails fast naming every bad variable, with a hint', () => {
    let err: unknown;
    try {
      loadConfig({ AVA_BATCH_SIZE: '0', AVA_MONGO_URL: 'http://x', AVA_LOG_LEVEL: 'loud' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.message).toMatch(/AVA_BATCH_SIZE="0"/);
    expect(e.message).toMatch(/AVA_MONGO_URL/);
    expect(e.message).toMatch(/AVA_LOG_LEVEL/);
    expect(e.hint).toMatch(/README/);
  });

  it('never echoes secrets in its errors', () => {
    expect(() => loadConfig({ AVA_API_TOKENS: 'ops:short-secret:admin', AVA_REDIS_URL: 'redis://u:hunter2@' })).toThrow(
      /AVA_API_TOKENS=\[redacted\]/,
    );
    try {
      loadConfig({ AVA_API_TOKENS: 'ops:short-secret:admin', AVA_REDIS_URL: 'redis://u:hunter2@' });
    } catch (err) {
      expect(String(err)).not.toContain('short-secret');
      expect(String(err)).not.toContain('hunter2');
    }
  });

  it('reads Redis Sentinel and Cluster settings, and refuses a cluster without a hash-tagged prefix', () => {
    const s = loadConfig({
      AVA_REDIS_SENTINELS: '10.0.0.1:26379,sentinel-2.local:26380',
      AVA_REDIS_SENTINEL_MASTER: 'ava',
      AVA_REDIS_MIN_REPLICAS: '1',
    });
    expect(s.redis.sentinels).toEqual([
      { host: '10.0.0.1', port: 26379 },
      { host: 'sentinel-2.local', port: 26380 },
    ]);
    expect(s.redis.sentinelMaster).toBe('ava');
    expect(s.redis.minReplicas).toBe(1);
    expect(
      loadConfig({ AVA_REDIS_CLUSTER_NODES: 'a:7000,b:7001', AVA_QUEUE_PREFIX: '{ava}' }).redis.clusterNodes,
    ).toEqual([
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
    ]);
    expect(() => loadConfig({ AVA_REDIS_CLUSTER_NODES: 'a:7000' })).toThrow(/AVA_QUEUE_PREFIX="bull" has no hash tag/);
    expect(() =>
      loadConfig({ AVA_REDIS_CLUSTER_NODES: 'a:7000', AVA_QUEUE_PREFIX: '{ava}', AVA_REDIS_SENTINELS: 'b:26379' }),
    ).toThrow(/both set/);
    expect(() => loadConfig({ AVA_REDIS_SENTINELS: 'no-port' })).toThrow(/AVA_REDIS_SENTINELS.*host:port/);
  });

  it("parses API tokens with their scopes and tenant (by default, the token's name)", () => {
    const c = loadConfig({
      AVA_API_TOKENS:
        'crm:0123456789abcdef0123:enqueue+read,dash:fedcba9876543210fedc:read:crm,ops:abcdefabcdefabcdef01:admin',
    });
    expect(c.api.tokens).toEqual([
      { name: 'crm', token: '0123456789abcdef0123', scopes: ['enqueue', 'read'], tenant: 'crm' },
      { name: 'dash', token: 'fedcba9876543210fedc', scopes: ['read'], tenant: 'crm' },
      { name: 'ops', token: 'abcdefabcdefabcdef01', scopes: ['admin'], tenant: 'ops' },
    ]);
    expect(() => loadConfig({ AVA_API_TOKENS: 'crm:0123456789abcdef0123:read:a/b' })).toThrow(/AVA_API_TOKENS/);
  });
});
