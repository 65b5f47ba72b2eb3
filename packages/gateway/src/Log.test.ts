import { describe, expect, it } from 'vitest';
import * as Log from './Log.js';

describe('Log', () => {
  it('writes JSON lines at the level and above, redacting fields that name credentials', () => {
    const lines: string[] = [];
    const log = Log.create({ level: 'info', write: (l) => lines.push(l), now: () => 0 });
    log.debug('hidden');
    log.info('request', { path: '/x', authorization: 'L402 AgE…:00', walletUri: 'lnd://…', count: 2n });
    log.warn('failed', { error: new Error('connection refused') });
    log.error('plain');
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
      { time: '1970-01-01T00:00:00.000Z', level: 'error', msg: 'plain' },
    ]);
    expect(lines.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
  });

  it('censors credentials nested in request views and token records, and leaves the caller’s fields alone', () => {
    const lines: string[] = [];
    const log = Log.create({ level: 'debug', write: (l) => lines.push(l), now: () => 0 });
    const fields = {
      headers: {
        authorization: 'L402 AgEEbHNhd…:4f2c',
        macaroon: '0201036c…',
        'grpc-metadata-macaroon': '0201036c…',
        cookie: 'session=abc',
        accept: 'application/json',
      },
      request: { method: 'GET', headers: { authorization: 'L402 AgEEbHNhd…:4f2c', host: 'x' } },
      token: { tokenId: 'ab12', preimage: '4f2c', macaroon: 'AgEE…' },
      preimage: '4f2c',
      masterkeypath: '/etc/l402/master.key',
      tokenId: 'ab12',
    };
    log.debug('seen', fields);
    const line = JSON.parse(lines[0]!);
    expect(line.headers).toEqual({
      authorization: '[redacted]',
      macaroon: '[redacted]',
      'grpc-metadata-macaroon': '[redacted]',
      cookie: '[redacted]',
      accept: 'application/json',
    });
    expect(line.request).toEqual({ method: 'GET', headers: { authorization: '[redacted]', host: 'x' } });
    expect(line.token).toBe('[redacted]');
    expect(line.preimage).toBe('[redacted]');
    expect(line.masterkeypath).toBe('[redacted]');
    expect(line.tokenId).toBe('ab12');
    expect(lines[0]).not.toMatch(/4f2c|AgEE|0201036c|session=abc/);
    // Redaction works on what is written, not on the caller's objects.
    expect(fields.headers.authorization).toBe('L402 AgEEbHNhd…:4f2c');
    expect(fields.request.headers.authorization).toBe('L402 AgEEbHNhd…:4f2c');
    expect(fields.token.preimage).toBe('4f2c');
  });

  it('writes readable lines for a terminal', () => {
    const lines: string[] = [];
    const log = Log.create({
      write: (l) => lines.push(l),
      now: () => Date.UTC(2025, 0, 1, 12, 30),
      pretty: true,
    });
    log.info('request', { method: 'GET', path: '/paid/x', status: 402, note: 'two words', preimage: 'ab' });
    expect(lines).toEqual([
      '12:30:00.000 INFO  request method=GET path=/paid/x status=402 note="two words" preimage=[redacted]\n',
    ]);
  });

  it('writes nothing when off', () => {
    const lines: string[] = [];
    Log.create({ level: 'off', write: (l) => lines.push(l) }).error('x');
    Log.silent.error('x');
    expect(lines).toEqual([]);
  });
});
