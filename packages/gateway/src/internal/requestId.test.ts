import { describe, expect, it } from 'vitest';
import { requestIdOf } from './requestId.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('requestIdOf', () => {
  it('keeps well-formed ids: UUIDs, ULIDs, hex, base64, up to 128 characters', () => {
    for (const id of [
      '3f2c9a6e-1b7d-4c1e-9a51-0c6a4f1e2d3b',
      '01HZX3J6Q9K2M4N8P0R5T7V9WB',
      'ab'.repeat(64),
      'dGVzdA==',
      'svc.a:b/c@d_e+f',
    ])
      expect(requestIdOf(id)).toBe(id);
  });

  it('replaces missing, repeated, oversized or unsafe ids with a fresh UUID', () => {
    const fresh = [
      undefined,
      ['a', 'b'],
      '',
      'a'.repeat(129),
      'two words',
      'id\r\nx-injected: 1',
      '"quoted"',
      'a,b',
      '-leading-dash',
      'é',
    ].map((value) => requestIdOf(value));
    for (const id of fresh) expect(id).toMatch(UUID);
    expect(new Set(fresh).size).toBe(fresh.length);
  });
});
