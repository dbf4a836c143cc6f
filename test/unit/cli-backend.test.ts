import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { backendOf, withBackendOptions } from '../../src/cli/cli-backend.js';
import { ContractError } from '../../src/errors/errors.js';

describe('the CLI backend, chosen once from --api and --token', () => {
  it('is direct without --api, the API with --token or else AVA_API_TOKEN, and a usage error naming --token without either', () => {
    expect(backendOf({}, 'configured-token-0123456789')).toEqual({ kind: 'direct' });
    expect(backendOf({ api: 'http://h:1', token: 'given' }, 'configured')).toEqual({
      kind: 'api',
      url: 'http://h:1',
      token: 'given',
    });
    expect(backendOf({ api: 'http://h:1' }, 'configured')).toMatchObject({ kind: 'api', token: 'configured' });
    expect(() => backendOf({ api: 'http://h:1' }, undefined)).toThrow(ContractError);
    expect(() => backendOf({ api: 'http://h:1' }, undefined)).toThrow(/--token/);
  });

  it('declares both options on a command', () => {
    const cmd = withBackendOptions(new Command('x').exitOverride());
    cmd.parse(['--api', 'http://h:1', '--token', 't'], { from: 'user' });
    expect(cmd.opts()).toEqual({ api: 'http://h:1', token: 't' });
  });
});
