/**
 * `l402 get`, the built binary, against a paid node:http server whose invoices come from the devnet
 * merchant, paying from the devnet payer (found through `devnet.json` in a temp `$L402_HOME`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIG, clientHome, deadPort, ensureBuilt, l402, startWorld, type World } from './testing.js';

let world: World;

beforeAll(async () => {
  ensureBuilt();
  world = await startWorld();
}, 180_000);

afterAll(async () => {
  await world?.close();
});

describe('l402 get', () => {
  it('pays the challenge, prints the body (exit 0), and reuses the token on the next run', async () => {
    const home = clientHome(world.devnet);
    const before = world.hits.paid ?? 0;
    const first = await l402(['get', `${world.url}/paid`], { home });
    expect(first).toMatchObject({ code: 0, stdout: 'hello, paid world\n' });
    expect(first.stderr).toMatch(
      /^l402: paid 21 sat \(fee \d+ sat\) to http:\/\/127\.0\.0\.1:\d+, token [0-9a-f]{64}\n$/,
    );

    const second = await l402(['get', `${world.url}/paid`, '--json'], { home });
    expect(second.code).toBe(0);
    const doc = JSON.parse(second.stdout);
    expect(doc).toMatchObject({
      status: 200,
      paid: false,
      reused: true,
      amountSats: 21,
      body: 'hello, paid world\n',
    });
    expect(world.hits.paid).toBe(before + 2);
    // One payment in the ledger: the second run paid nothing.
    const budget = await l402(['budget', 'show', '--json'], { home });
    expect(JSON.parse(budget.stdout).spent.totalSats).toBe(21);
  }, 60_000);

  it('--json: status, headers, paid amount, fee, token id and body', async () => {
    const home = clientHome(world.devnet);
    const r = await l402(['get', `${world.url}/paid`, '--json'], { home });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual({
      url: `${world.url}/paid`,
      status: 200,
      statusText: 'OK',
      headers: expect.objectContaining({ 'content-type': 'text/plain', 'x-served': 'paid' }),
      paid: true,
      reused: false,
      amountSats: 21,
      feeSats: expect.any(Number),
      tokenId: expect.stringMatching(/^[0-9a-f]{64}$/),
      paymentHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      bytes: 18,
      body: 'hello, paid world\n',
    });
    const listed = await l402(['tokens', 'list', '--json'], { home });
    expect(JSON.parse(listed.stdout)).toEqual([
      expect.objectContaining({ origin: world.url, tokenId: doc.tokenId, state: 'paid', hasPreimage: true }),
    ]);
    expect(listed.stdout).not.toMatch(/"preimage"/);
  }, 60_000);

  it('--no-pay shows the price and pays nothing', async () => {
    const home = clientHome(world.devnet);
    const r = await l402(['get', `${world.url}/expensive`, '--no-pay'], { home });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^500 sat via L402/i);
    const json = await l402(['get', `${world.url}/paid`, '--no-pay', '--json'], { home });
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: 402,
      price: { sats: 21, invoice: expect.stringMatching(/^lnbcrt/) },
      cachedToken: false,
    });
    const listed = await l402(['tokens', 'list', '--json'], { home });
    expect(JSON.parse(listed.stdout)).toEqual([]);
  }, 60_000);

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

  it('-o writes the body to a file; -i puts the head first', async () => {
    const home = clientHome(world.devnet);
    const file = join(home, 'big.bin');
    const r = await l402(['get', `${world.url}/big`, '-o', file, '--json'], { home });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 200, paid: true, file, bytes: BIG.length });
    expect(readFileSync(file).equals(BIG)).toBe(true);
    // stderr is a pipe here: no progress bar.
    expect(r.stderr).toBe('');

    const head = await l402(['get', `${world.url}/paid`, '-i', '-s'], { home });
    expect(head).toMatchObject({ code: 0, stderr: '' });
    expect(head.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n(?:[a-z-]+: .*\r\n)+\r\nhello, paid world\n$/);
  }, 60_000);

  it('-d @file: the POST body is sent again after paying, byte for byte', async () => {
    const home = clientHome(world.devnet);
    const payload = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x80, ...Buffer.from('{"q":"forecast"}')]);
    const file = join(home, 'body.bin');
    writeFileSync(file, payload);
    const seen = world.bodies.length;
    const r = await l402(
      ['get', `${world.url}/echo`, '-d', `@${file}`, '-H', 'Content-Type: application/octet-stream', '-s'],
      { home },
    );
    expect(r.code).toBe(0);
    expect(r.raw.equals(payload)).toBe(true);
    // The first (unpaid) request got the 402 before the handler; the handler saw the replayed body once.
    expect(world.bodies.slice(seen)).toEqual([payload]);
  }, 60_000);

  it('-v shows the steps and never a credential', async () => {
    const home = clientHome(world.devnet);
    const r = await l402(['get', `${world.url}/paid`, '-v', '-H', 'Authorization: Bearer s3cret'], { home });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^> GET \/paid HTTP\/1\.1$/m);
    expect(r.stderr).toMatch(/^\* paid .*amountSats=21/m);
    expect(r.stderr).toMatch(/^< HTTP\/1\.1 200 OK$/m);
    expect(r.stderr).not.toMatch(/s3cret/);
    const [{ preimage }] = JSON.parse((await l402(['tokens', 'export'], { home })).stdout);
    expect(r.stderr).not.toContain(preimage);
  }, 60_000);

  it('bad input exits 2 with one line', async () => {
    const home = clientHome(world.devnet);
    const cases = [
      ['get', 'ftp://example.com/x'],
      ['get', `${world.url}/paid`, '--max-cost', 'lots'],
      ['get', `${world.url}/paid`, '-H', 'no colon'],
      ['get', `${world.url}/paid`, '-d', '@/nonexistent/file'],
      ['get', 'http://example.com/paid'],
    ];
    const results = await Promise.all(cases.map((args) => l402(args, { home })));
    for (const [i, r] of results.entries()) {
      expect({ args: cases[i], code: r.code }).toEqual({ args: cases[i], code: 2 });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(results[4]?.stderr).toMatch(/http/i);
    expect(writeFileSync(join(home, 'config.yaml'), 'maxCostSats: -1\n')).toBeUndefined();
    const bad = await l402(['get', `${world.url}/paid`], { home });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/config\.yaml: maxCostSats/);
  }, 60_000);
});
