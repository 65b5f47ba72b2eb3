/**
 * `l402 tokens`, the built binary: list, show, export, import and rm over a real `$L402_HOME`, and
 * attenuate: the narrowed token works for what it still grants and fails outside it.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Challenge, Identifier, Macaroon } from 'l402';
import { describe, expect, it } from 'vitest';
import { clientHome, l402, useWorld } from './testing.js';

const world = useWorld();

/** A home holding one paid token for the `notes` service (read and write). */
async function boughtNotes() {
  const home = clientHome(world.devnet);
  const r = await l402(['get', `${world.url}/notes`, '--json'], { home });
  expect(r.code).toBe(0);
  return { home, tokenId: JSON.parse(r.stdout).tokenId as string };
}

describe('l402 tokens', () => {
  it('lists, shows, exports to a 0600 file, imports into another home (used there without paying), removes', async () => {
    const { home, tokenId } = await boughtNotes();
    const list = await l402(['tokens', 'list'], { home });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(
      new RegExp(`^${tokenId.slice(0, 16)}  ${world.url}  /  10 sat  paid  expires -\\n$`),
    );

    const shown = await l402(['tokens', 'show', tokenId.slice(0, 10)], { home });
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      tokenId,
      origin: world.url,
      hasPreimage: true,
      caveats: expect.arrayContaining(['services=notes:0', 'notes_capabilities=read,write']),
    });
    expect(shown.stdout).not.toMatch(/"preimage"/);

    const file = join(home, 'export.json');
    expect((await l402(['tokens', 'export', '-o', file], { home })).code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const exported = JSON.parse(readFileSync(file, 'utf8'));
    expect(exported).toEqual([
      expect.objectContaining({ tokenId, preimage: expect.stringMatching(/^[0-9a-f]{64}$/) }),
    ]);

    const other = clientHome(world.devnet);
    expect(await l402(['tokens', 'import', file], { home: other })).toMatchObject({
      code: 0,
      stdout: 'imported 1 token\n',
    });
    const reads = world.hits.read ?? 0;
    const used = await l402(['get', `${world.url}/notes`, '--json'], { home: other });
    expect(JSON.parse(used.stdout)).toMatchObject({ status: 200, paid: false, reused: true, tokenId });
    expect(world.hits.read).toBe(reads + 1);

    expect((await l402(['tokens', 'rm', tokenId], { home: other })).stdout).toMatch(/^removed /);
    expect(JSON.parse((await l402(['tokens', 'list', '--json'], { home: other })).stdout)).toEqual([]);
    const missing = await l402(['tokens', 'show', tokenId], { home: other });
    expect(missing.code).toBe(2);
  }, 90_000);

  it("imports lnget's token files (Aperture's binary token format) and uses them without paying", async () => {
    const { home, tokenId } = await boughtNotes();
    const [t] = JSON.parse((await l402(['tokens', 'export'], { home })).stdout);
    const mac = Buffer.from(t.macaroon, 'base64');
    const file = Buffer.alloc(4 + mac.length + 64 + 24);
    file.writeUInt32BE(mac.length, 0);
    mac.copy(file, 4);
    Buffer.from(t.paymentHash, 'hex').copy(file, 4 + mac.length);
    Buffer.from(t.preimage, 'hex').copy(file, 4 + mac.length + 32);
    file.writeBigUInt64BE(10_000n, 4 + mac.length + 64);
    file.writeBigUInt64BE(0n, 4 + mac.length + 72);
    file.writeBigInt64BE(BigInt(Date.now()) * 1_000_000n, 4 + mac.length + 80);
    const lnget = join(clientHome(), 'tokens');
    mkdirSync(join(lnget, '127.0.0.1'), { recursive: true });
    writeFileSync(join(lnget, '127.0.0.1', 'l402.token'), file);
    writeFileSync(join(lnget, '127.0.0.1', '.domain'), world.url);

    const agent = clientHome(world.devnet);
    expect(await l402(['tokens', 'import', '--lnget', lnget], { home: agent })).toMatchObject({
      code: 0,
      stdout: 'imported 1 token\n',
    });
    const got = await l402(['get', `${world.url}/notes`, '--json'], { home: agent });
    expect(JSON.parse(got.stdout)).toMatchObject({
      status: 200,
      paid: false,
      reused: true,
      tokenId,
      amountSats: 10,
    });
  }, 60_000);

  it('recover: a payment made before a crash becomes the token, and is never paid again', async () => {
    // What a run that stopped after paying leaves behind: a pending token, the invoice paid at the wallet.
    const home = clientHome(world.devnet);
    const challenge = await fetch(`${world.url}/paid`);
    const offer = Challenge.l402(Challenge.parse(challenge.headers.get('www-authenticate') ?? ''));
    if (offer === undefined) throw new Error('no L402 challenge');
    const id = Identifier.toJSON(Identifier.decode(Macaroon.decode(offer.macaroon).identifier));
    const pending = {
      origin: world.url,
      path: '/',
      scheme: 'L402',
      macaroon: offer.macaroon,
      paymentHash: id.paymentHash,
      tokenId: id.tokenId,
      invoice: offer.invoice,
      amountSats: 21,
      state: 'pending',
      createdAt: Date.now(),
    };
    expect((await l402(['tokens', 'import', '-'], { home, stdin: JSON.stringify([pending]) })).code).toBe(0);
    expect((await l402(['wallet', 'pay', offer.invoice], { home })).code).toBe(0);

    const recovered = await l402(['tokens', 'recover', '--json'], { home });
    expect(recovered.code).toBe(0);
    expect(JSON.parse(recovered.stdout)).toEqual([
      { origin: world.url, paymentHash: id.paymentHash, state: 'paid' },
    ]);
    expect(JSON.parse((await l402(['tokens', 'list', '--json'], { home })).stdout)).toEqual([
      expect.objectContaining({ tokenId: id.tokenId, state: 'paid', hasPreimage: true }),
    ]);
    const used = await l402(['get', `${world.url}/paid`, '--json'], { home });
    expect(JSON.parse(used.stdout)).toMatchObject({
      status: 200,
      paid: false,
      reused: true,
      tokenId: id.tokenId,
    });
    expect((await l402(['tokens', 'recover'], { home })).stdout).toBe('no pending payments\n');
  }, 60_000);

  it('attenuate narrows a token for another agent: read still works, write is refused', async () => {
    const { home, tokenId } = await boughtNotes();
    const narrowed = await l402(['tokens', 'attenuate', world.url, '--caveat', 'notes_capabilities=read'], {
      home,
    });
    expect(narrowed.code).toBe(0);
    const { credential, token } = JSON.parse(narrowed.stdout);
    expect(credential).toMatch(/^L402 [A-Za-z0-9+/=_-]+:[0-9a-f]{64}$/);
    expect(token).toMatchObject({ tokenId, origin: world.url, state: 'paid' });

    // Straight to the server with the credential.
    const read = await fetch(`${world.url}/notes`, { headers: { authorization: credential } });
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('notes: read\n');
    const write = await fetch(`${world.url}/notes`, {
      method: 'POST',
      headers: { authorization: credential },
    });
    expect(write.status).not.toBe(200);
    expect([401, 402, 403]).toContain(write.status);

    // Through another agent's store: the read is served without paying; the write is not (and with no
    // budget for it, the agent refuses to buy a new token).
    const agent = clientHome(world.devnet);
    const file = join(agent, 'narrow.json');
    writeFileSync(file, narrowed.stdout);
    expect((await l402(['tokens', 'import', file], { home: agent })).code).toBe(0);
    const got = await l402(['get', `${world.url}/notes`, '--json'], { home: agent });
    expect(JSON.parse(got.stdout)).toMatchObject({ status: 200, reused: true, paid: false });
    const writes = world.hits.write ?? 0;
    const refused = await l402(['get', `${world.url}/notes`, '-X', 'POST', '--max-cost', '0'], {
      home: agent,
    });
    expect(refused.code).toBe(4);
    expect(world.hits.write ?? 0).toBe(writes);

    // The original token still writes.
    const original = await l402(['get', `${world.url}/notes`, '-X', 'POST', '--json'], { home });
    expect(JSON.parse(original.stdout)).toMatchObject({
      status: 200,
      reused: true,
      body: 'notes: written\n',
    });
  }, 90_000);

  it('attenuate never widens, and needs a paid token', async () => {
    const { home } = await boughtNotes();
    const once = await l402(['tokens', 'attenuate', world.url, '--caveat', 'notes_capabilities=read'], {
      home,
    });
    expect(once.code).toBe(0);
    const wider = await l402(
      ['tokens', 'attenuate', world.url, '--caveat', 'notes_capabilities=read,write,admin'],
      {
        home,
      },
    );
    expect(wider.code).toBe(2);
    expect(wider.stderr).toMatch(/would widen the token's notes_capabilities=read,write/);
    const service = await l402(['tokens', 'attenuate', world.url, '--caveat', 'services=notes:1'], { home });
    expect(service.code).toBe(2);
    const none = await l402(['tokens', 'attenuate', 'http://127.0.0.1:1', '--caveat', 'a=b'], { home });
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no paid token for http:\/\/127\.0\.0\.1:1/);
  }, 60_000);
});
