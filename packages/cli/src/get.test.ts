/**
 * `l402 get`, the built binary, against a paid node:http server whose invoices come from the devnet
 * merchant, paying from the devnet payer (found through `devnet.json` in a temp `$L402_HOME`).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIG, clientHome, l402, root, useWorld } from './testing.js';

const world = useWorld();

describe('l402 get', () => {
  it('pays the challenge, prints the body (exit 0), and reuses the token on the next run', async () => {
    const home = clientHome(world.devnet);
    const first = await l402(['get', `${world.url}/counted`], { home });
    expect(first).toMatchObject({ code: 0, stdout: 'hello, paid world\n' });
    expect(first.stderr).toMatch(
      /^l402: paid 21 sat \(fee \d+ sat\) to http:\/\/127\.0\.0\.1:\d+, token [0-9a-f]{64}\n$/,
    );

    const second = await l402(['get', `${world.url}/counted`, '--json'], { home });
    expect(second.code).toBe(0);
    const doc = JSON.parse(second.stdout);
    expect(doc).toMatchObject({
      status: 200,
      paid: false,
      reused: true,
      amountSats: 21,
      body: 'hello, paid world\n',
    });
    // Only this test asks for /counted: the server served both runs.
    expect(world.hits.counted).toBe(2);
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
      expect.objectContaining({
        origin: world.url,
        tokenId: doc.tokenId,
        state: 'paid',
        hasPreimage: true,
        wallet: 'lnd', // the devnet payer's default API, connected only to pay
      }),
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

  it('redirects: shown as they are, followed with -L (and paid for there)', async () => {
    const home = clientHome(world.devnet);
    const [shown, followed] = await Promise.all([
      l402(['get', `${world.url}/go`, '--json'], { home }),
      l402(['get', `${world.url}/go`, '-L', '--json'], { home: clientHome(world.devnet) }),
    ]);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      status: 302,
      paid: false,
      headers: { location: '/paid' },
    });
    expect(followed.code).toBe(0);
    expect(JSON.parse(followed.stdout)).toMatchObject({
      status: 200,
      paid: true,
      body: 'hello, paid world\n',
    });
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

  it.runIf(existsSync('/usr/bin/script'))(
    '-o on a terminal draws a progress bar on stderr',
    async () => {
      // util-linux `script` runs the command on a pseudo-terminal: stderr is a TTY there.
      const home = clientHome(world.devnet);
      const file = join(home, 'big.bin');
      const command = [
        process.execPath,
        join(root, 'packages/cli/bin/l402.js'),
        'get',
        `${world.url}/big`,
        '-o',
        file,
      ]
        .map((a) => `'${a}'`)
        .join(' ');
      const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], {
        env: { ...process.env, L402_HOME: home },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let seen = '';
      child.stdout.on('data', (d: Buffer) => {
        seen += d.toString('utf8');
      });
      const [code] = await once(child, 'close');
      expect(code).toBe(0);
      expect(readFileSync(file).equals(BIG)).toBe(true);
      expect(seen).toMatch(/\r\[#{30}\] 100% {2}2\.0 MiB \/ 2\.0 MiB/);
      // Without a terminal (the other -o test) there is none.
    },
    60_000,
  );

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

    // -d @- reads stdin; several -d are joined with & (form fields, as curl does).
    const piped = await l402(['get', `${world.url}/echo`, '-d', '@-', '-s'], { home, stdin: 'from=stdin' });
    expect(piped).toMatchObject({ code: 0, stdout: 'from=stdin' });
    const joined = await l402(['get', `${world.url}/echo`, '-d', 'a=1', '-d', 'b=2', '-i', '-s'], { home });
    expect(joined.stdout).toMatch(
      /content-type: application\/x-www-form-urlencoded\r\n[\s\S]*\r\n\r\na=1&b=2$/,
    );
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
});
