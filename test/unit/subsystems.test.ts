import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { service, Subsystems, type Subsystem } from '../../src/pipeline/subsystems.js';

const log = pino({ level: 'silent' });

/** A subsystem that records its start, stop and abort in `trail`; `stopMs` delays its stop. */
function recorded(name: string, trail: string[], stopMs = 0): Subsystem<string> {
  return {
    name,
    start: () => (trail.push(`start ${name}`), name),
    stopping: () => ({
      stop: () => new Promise<void>((resolve) => setTimeout(() => (trail.push(`stop ${name}`), resolve()), stopMs)),
      abort: () => void trail.push(`abort ${name}`),
    }),
  };
}

describe('Subsystems', () => {
  it('stops what started in reverse order', async () => {
    const trail: string[] = [];
    const s = new Subsystems(log, 1_000);
    for (const name of ['models', 'connections', 'loop']) await s.start(recorded(name, trail));
    expect(await s.stopAll()).toBe('stopped');
    expect(trail).toEqual([
      'start models',
      'start connections',
      'start loop',
      'stop loop',
      'stop connections',
      'stop models',
    ]);
  });

  it('stops the ones before a subsystem that fails to start, and throws its error', async () => {
    const trail: string[] = [];
    const s = new Subsystems(log, 1_000);
    await s.start(recorded('models', trail));
    await s.start(recorded('connections', trail));
    const failing = {
      name: 'knowledge',
      start: () => Promise.reject(new Error('db unreadable')),
      stopping: () => ({ stop: async () => {} }),
    };
    await expect(s.start(failing)).rejects.toThrow('db unreadable');
    expect(trail.slice(2)).toEqual(['stop connections', 'stop models']);
  });

  it('aborts the stuck subsystem and the ones after it once the grace period passes', async () => {
    const trail: string[] = [];
    const s = new Subsystems(log, 50);
    await s.start(recorded('connections', trail));
    await s.start(recorded('loop', trail, 10_000));
    await s.start(recorded('heartbeat', trail));
    expect(await s.stopAll()).toBe('aborted');
    expect(trail.slice(3)).toEqual(['stop heartbeat', 'abort loop', 'abort connections']);
  });

  it('starts a service with its own start() and stops it with its stop()', async () => {
    const trail: string[] = [];
    const s = new Subsystems(log, 1_000);
    await s.start(
      service('sweeper', () => ({ start: () => void trail.push('start'), stop: async () => void trail.push('stop') })),
    );
    await s.stopAll();
    expect(trail).toEqual(['start', 'stop']);
  });
});
