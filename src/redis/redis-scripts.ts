import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** AVA's Lua scripts: the file under `lua/` each command runs, and how many of its arguments are keys (else the first). */
const SCRIPTS = {
  avaRegisterMessages: { file: 'register-messages.lua' },
  avaStreamAppend: { file: 'stream-append.lua' },
  avaTurnsAppend: { file: 'turns-append.lua', numberOfKeys: 2 },
  avaTurnsRead: { file: 'turns-read.lua', numberOfKeys: 2 },
  avaLockRelease: { file: 'lock-release.lua', numberOfKeys: 1 },
  avaQuotaTake: { file: 'quota-take.lua' },
} as const;

type Arg = string | number;

/** A connection with AVA's scripts as commands (ioredis runs each by its SHA, loading it once per connection). */
export type ScriptedRedis = Redis & {
  avaRegisterMessages(numKeys: number, ...keysThenArgs: Arg[]): Promise<Array<string | number>>;
  avaStreamAppend(numKeys: number, ...keysThenArgs: Arg[]): Promise<number>;
  avaTurnsAppend(order: string, turns: string, ...args: Arg[]): Promise<number>;
  avaTurnsRead(order: string, turns: string, max: number): Promise<Array<string | null>>;
  avaLockRelease(lock: string, token: string): Promise<number>;
  avaQuotaTake(numKeys: number, ...keysThenArgs: Arg[]): Promise<[number, number]>;
};

const sources = new Map<string, string>();

/**
 * The one place AVA's Lua is loaded: every script is a `.lua` file beside this module (copied into dist/ by the
 * build), defined as a command on a connection the first time a module asks for it there.
 */
export class RedisScripts {
  /** `redis`, with every script defined on it. */
  static on(redis: Redis): ScriptedRedis {
    for (const [name, { file, ...rest }] of Object.entries(SCRIPTS)) {
      if (name in redis) continue;
      redis.defineCommand(name, { lua: source(file), ...rest });
    }
    return redis as ScriptedRedis;
  }
}

function source(file: string): string {
  let lua = sources.get(file);
  if (lua === undefined) {
    lua = readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
    sources.set(file, lua);
  }
  return lua;
}
