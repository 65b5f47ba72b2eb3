import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Lru } from './lru.js';

describe('Lru', () => {
  it('never holds more than its capacity and keeps what is used often', () => {
    const lru = new Lru<number, number>(100);
    lru.set(0, 0);
    for (let i = 0; i < 10_000; i++) {
      lru.set(i, i);
      expect(lru.get(0)).toBe(0); // 0 is used all the time
      expect(lru.size).toBeLessThanOrEqual(100);
    }
    expect(lru.get(0)).toBe(0);
    expect(lru.get(9_999)).toBe(9_999);
    expect(lru.get(5)).toBeUndefined();
  });

  it('agrees with a plain map on every key it still holds, and deletes from both generations', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('set', 'get', 'delete'), fc.integer({ min: 0, max: 30 })), {
          maxLength: 300,
        }),
        fc.integer({ min: 1, max: 20 }),
        (ops, capacity) => {
          const lru = new Lru<number, string>(capacity);
          const truth = new Map<number, string>();
          ops.forEach(([op, key], i) => {
            if (op === 'set') {
              lru.set(key, `v${i}`);
              truth.set(key, `v${i}`);
            } else if (op === 'delete') {
              lru.delete(key);
              truth.delete(key);
            } else {
              const got = lru.get(key);
              if (got !== undefined) expect(got).toBe(truth.get(key));
            }
            expect(lru.size).toBeLessThanOrEqual(Math.max(capacity, 2));
          });
          lru.deleteWhere(() => true);
          expect(lru.size).toBe(0);
        },
      ),
    );
  });
});
