import type { Command } from 'commander';
import { ContractError } from '../errors/errors.js';

/** Where a command works: through the HTTP API (its URL and token), or on Redis and the database directly. */
export type CliBackend = { kind: 'api'; url: string; token: string } | { kind: 'direct' };

/** The options every command that can work either way takes: `--api` and `--token`, declared here once. */
export function withBackendOptions(command: Command): Command {
  return command
    .option('--api <url>', 'work through the HTTP API at this URL (default: straight on Redis and the database)')
    .option('--token <token>', 'API bearer token (default: AVA_API_TOKEN)');
}

/**
 * The backend a command's options choose, decided once: the API with `--token` (else `AVA_API_TOKEN`; a usage error
 * when neither is set), or direct.
 */
export function backendOf(opts: { api?: string; token?: string }, configuredToken: string | undefined): CliBackend {
  if (!opts.api) return { kind: 'direct' };
  const token = opts.token ?? configuredToken;
  if (!token)
    throw new ContractError([{ path: '--token', message: 'an API token is needed with --api (or set AVA_API_TOKEN)' }]);
  return { kind: 'api', url: opts.api, token };
}
