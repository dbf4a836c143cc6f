import { existsSync } from 'node:fs';
import { ConfigError } from '../errors/errors.js';
import { redactUrl } from '../logging/redact.js';
import type { ConfigOption, SectionValues } from './config-option.js';
import { configSchema } from './config-schema.js';

/** The configuration's subsystems. */
export type ConfigSection = keyof typeof configSchema;

/** The validated, frozen configuration, by subsystem (see config-schema.ts for every option and its meaning). */
export type AvaConfig = { readonly [S in ConfigSection]: SectionValues<(typeof configSchema)[S]> };

/** Every option with its section and key, in the schema's order. */
export const CONFIG_OPTIONS: ReadonlyArray<{ section: ConfigSection; key: string; option: ConfigOption }> =
  Object.entries(configSchema).flatMap(([section, options]) =>
    Object.entries(options).map(([key, option]) => ({ section: section as ConfigSection, key, option })),
  );

/** Every environment variable name the configuration reads. */
export const CONFIG_VARIABLES = CONFIG_OPTIONS.map((o) => o.option.env);

/**
 * Builds the configuration from environment variables (and optional overrides, used by tests), validates it and
 * freezes it. Fails fast with every bad variable named and a hint. An empty variable counts as unset.
 */
export function loadConfig(
  source: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<string, string>> = {},
): AvaConfig {
  const problems: string[] = [];
  const sections: Record<string, Record<string, unknown>> = {};
  for (const { section, key, option } of CONFIG_OPTIONS) {
    const given = overrides[option.env] ?? source[option.env];
    const text = given === '' || given === undefined ? option.default : given;
    const parsed = text === undefined ? { success: true as const, data: undefined } : option.type.safeParse(text);
    if (parsed.success) (sections[section] ??= {})[key] = parsed.data;
    else {
      const shown = option.secret ? '[redacted]' : JSON.stringify(redactUrl(text ?? ''));
      problems.push(`${option.env}=${shown}: ${parsed.error.issues.map((i) => i.message).join(', ')}`);
    }
  }
  if (problems.length > 0)
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`, 'see the configuration table in README.md');
  const config = Object.freeze(
    Object.fromEntries(Object.entries(sections).map(([name, values]) => [name, Object.freeze(values)])),
  ) as AvaConfig;
  checkCombinations(config);
  return config;
}

/** Options that are valid alone but not together. */
function checkCombinations({ redis, queue }: AvaConfig): void {
  if (redis.clusterNodes && !queue.prefix.startsWith('{')) {
    throw new ConfigError(
      `invalid configuration: AVA_REDIS_CLUSTER_NODES is set but AVA_QUEUE_PREFIX=${JSON.stringify(queue.prefix)} has no hash tag`,
      'set AVA_QUEUE_PREFIX={ava} (or another {tag}) so that every key of the queue is in one slot',
    );
  }
  if (redis.clusterNodes && redis.sentinels) {
    throw new ConfigError(
      'invalid configuration: AVA_REDIS_CLUSTER_NODES and AVA_REDIS_SENTINELS are both set',
      'a Redis deployment is either a cluster or watched by sentinels: set one',
    );
  }
  if (redis.tlsCaFile && !redis.url.startsWith('rediss://')) {
    throw new ConfigError(
      'invalid configuration: AVA_REDIS_TLS_CA_FILE is set but AVA_REDIS_URL is not rediss:// (TLS)',
      'use a rediss:// URL or unset AVA_REDIS_TLS_CA_FILE',
    );
  }
  if (redis.tlsCaFile && !existsSync(redis.tlsCaFile)) {
    throw new ConfigError(
      `invalid configuration: AVA_REDIS_TLS_CA_FILE=${JSON.stringify(redis.tlsCaFile)}: no such file`,
      'point it at the PEM file of the CA that signed the Redis server certificate',
    );
  }
}
