import { describe, expect, it } from 'vitest';
import * as Log from './Log.js';

describe('Log', () => {
  it('writes JSON lines at the level and above, redacting fields that name credentials', () => {
    const lines: string[] = [];
    const log = Log.create({ level: 'info', write: (l) => lines.push(l), now: () => 0 });
    log.debug('hidden');
    log.info('request', { path: '/x', authorization: 'L402 AgE…:00', walletUri: 'lnd://…', count: 2n });
    log.warn('failed', { error: new Error('connection refused') });
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        msg: 'request',
        path: '/x',
        authorization: '[redacted]',
        walletUri: '[redacted]',
        count: '2',
      },
      { time: '1970-01-01T00:00:00.000Z', level: 'warn', msg: 'failed', error: 'connection refused' },
    ]);
    expect(lines.every((l) => l.endsWith('}\n'))).toBe(true);
  });

  it('writes nothing when off', () => {
    const lines: string[] = [];
    Log.create({ level: 'off', write: (l) => lines.push(l) }).error('x');
    expect(lines).toEqual([]);
  });
});
