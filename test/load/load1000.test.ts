/**
 * The CI variant of `bench/load1000.js`: 1,000 concurrent keep-alive connections through the gateway
 * for 10 s (`L402_LOAD_SECONDS`), from a second process (the script, which runs the gateway, upstream
 * and devnet as children of its own), every request with a paid credential. Asserts what does not
 * depend on the machine's speed: every request answered 200 (no error, no timeout) and the gateway's
 * resident memory bounded. Timing figures are printed, never judged.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, root } from '../faults/harness.js';

const SECONDS = Number(process.env.L402_LOAD_SECONDS ?? 10);

beforeAll(() => ensureBuilt(), 120_000);

describe('1,000 keep-alive connections through the gateway', () => {
  it('answers every request 200 with bounded memory', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(root, 'bench/load1000.js'), '--seconds', String(SECONDS), '--json', '--no-baseline'],
      { cwd: root, maxBuffer: 1 << 20, timeout: (SECONDS + 90) * 1000 },
    ).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`bench/load1000.js failed: ${error.stderr ?? error}\n${error.stdout ?? ''}`);
    });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    const g = result.gateway;
    console.log(
      `load1000: ${g.requests} requests, ${Math.round(g.rps)} req/s, p99 ${g.p99ms} ms, RSS idle ${g.rss.before?.toFixed(1)} MiB, peak ${g.rss.peak?.toFixed(1)} MiB`,
    );
    expect(g.requests).toBeGreaterThan(0);
    expect({ errors: g.errors, timeouts: g.timeouts, non200: g.non200 }).toEqual({
      errors: 0,
      timeouts: 0,
      non200: 0,
    });
    // 1,000 open connections cost a Node proxy tens of MiB; a leak per request would show as hundreds.
    expect(g.rss.peak - g.rss.before).toBeLessThan(256);
  }, 180_000);
});
