/**
 * `l402 get`'s exit codes (refused, payment failed, network error, HTTP error, no wallet, bad input),
 * the built binary against a paid node:http server on the devnet (see get.test.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clientHome, deadPort, l402, useWorld } from './testing.js';

const world = useWorld();

describe('l402 get: exit codes', () => {
  it('--max-cost below the price refuses to pay: exit 4, nothing paid', async () => {
    const home = clientHome(world.devnet);
    const before = world.hits.expensive ?? 0;
    const r = await l402(['get', `${world.url}/expensive`, '--max-cost', '100'], { home });
    expect(r.code).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^l402: .*500.*\n$/);
    expect(world.hits.expensive ?? 0).toBe(before);
    expect(JSON.parse((await l402(['budget', 'show', '--json'], { home })).stdout).spent.totalSats).toBe(0);
  }, 60_000);

  it('a wallet that cannot pay: exit 5', async () => {
    // The merchant pays its own invoice: it has no outbound liquidity (the payer funded the channel).
    const home = clientHome(world.devnet);
    const r = await l402(['get', `${world.url}/paid`, '--wallet', 'devnet:merchant'], { home });
    expect(r.code).toBe(5);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('a server that cannot be reached: exit 6', async () => {
    const home = clientHome(world.devnet);
    const r = await l402(['get', `http://127.0.0.1:${await deadPort()}/paid`], { home });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^l402: .*ECONNREFUSED/);
    // A body cut off half way is a network error too, to stdout or to a file.
    const [cut, cutToFile] = await Promise.all([
      l402(['get', `${world.url}/cut`], { home }),
      l402(['get', `${world.url}/cut`, '-o', join(home, 'cut.bin')], { home }),
    ]);
    expect(cut).toMatchObject({ code: 6, stdout: 'the beginning' });
    expect(cut.stderr).toMatch(/^l402: the body of .*\/cut was cut off: /);
    expect(cutToFile.code).toBe(6);
  }, 30_000);

  it('an HTTP error: exit 3, the body still written; paid then 418 too', async () => {
    const home = clientHome(world.devnet);
    const missing = await l402(['get', `${world.url}/nothing-here`], { home });
    expect(missing).toMatchObject({ code: 3, stdout: 'not here\n' });
    expect(missing.stderr).toMatch(/HTTP 404/);
    const teapot = await l402(['get', `${world.url}/teapot`, '--json'], { home });
    expect(teapot.code).toBe(3);
    expect(JSON.parse(teapot.stdout)).toMatchObject({ status: 418, paid: true, body: 'short and stout\n' });
  }, 60_000);

  it('no wallet to pay with: exit 2, saying how to set one up', async () => {
    const r = await l402(['get', `${world.url}/paid`], { home: clientHome() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^l402: .*no running devnet.*l402 devnet/);
  }, 30_000);

  it('bad input exits 2 with one line', async () => {
    const home = clientHome(world.devnet);
    const cases = [
      ['get', 'ftp://example.com/x'],
      ['get', `${world.url}/paid`, '--max-cost', 'lots'],
      ['get', `${world.url}/paid`, '-H', 'Authorization Bearer s3cret'],
      ['get', `${world.url}/paid`, '-d', '@/nonexistent/file'],
      ['get', 'http://example.com/paid'],
      ['get', 'http://user:secret@127.0.0.1:1/paid'],
    ];
    const results = await Promise.all(cases.map((args) => l402(args, { home })));
    for (const [i, r] of results.entries()) {
      expect({ args: cases[i], code: r.code }).toEqual({ args: cases[i], code: 2 });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(results[4]?.stderr).toMatch(/http/i);
    expect(results[5]?.stderr).not.toContain('secret');
    expect(results[2]?.stderr).not.toContain('s3cret');
    expect(writeFileSync(join(home, 'config.yaml'), 'maxCostSats: -1\n')).toBeUndefined();
    const bad = await l402(['get', `${world.url}/paid`], { home });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/config\.yaml: maxCostSats/);
  }, 60_000);
});
