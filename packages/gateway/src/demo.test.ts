import { randomBytes } from 'node:crypto';
import { Credential, Identifier, Macaroon } from 'l402';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as Demo from './demo.js';

let demo: Demo.Demo;
beforeAll(async () => {
  demo = await Demo.start();
});
afterAll(() => demo.close());

describe('the demo backend', () => {
  it('answers its free and paid routes with JSON, showing the token id the gateway forwarded', async () => {
    const free = await fetch(`${demo.url}${Demo.PATHS.free}`);
    expect(await free.json()).toMatchObject({ service: 'free', path: '/free/hello' });
    const tokenId = randomBytes(32);
    const identifier = Identifier.encode({ version: 0, paymentHash: randomBytes(32), tokenId });
    const macaroon = Macaroon.create({ rootKey: randomBytes(32), identifier, location: 'lsat' });
    const authorization = Credential.format({ macaroon, preimage: randomBytes(32) });
    const paid = await fetch(`${demo.url}${Demo.PATHS.paid}`, { headers: { authorization } });
    expect(await paid.json()).toMatchObject({ service: 'paid', tokenId: tokenId.toString('hex') });
    expect((await fetch(`${demo.url}/elsewhere`)).status).toBe(404);
  });

  it('streams its events one at a time', async () => {
    const started = Date.now();
    const response = await fetch(`${demo.url}${Demo.PATHS.events}?count=3&interval=200`);
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    // The first chunk is the first event alone: the others were not written yet.
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^event: tick\nid: 1\ndata: \{"n":1,"of":3,[^\n]*\n\n$/);
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      rest += new TextDecoder().decode(chunk.value);
    }
    expect(rest.match(/^event: tick$/gm)).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });
});

describe('payCommand', () => {
  it('is one shell word after node -e, importing l402 by absolute URL and reading the wallet from devnet.json', () => {
    const command = Demo.payCommand({
      url: 'http://127.0.0.1:8080/paid/hello',
      devnetFile: "/tmp/it's/devnet.json",
    });
    expect(command).toMatch(/^node --input-type=module -e '.*'$/);
    expect(command).toContain('await import("file:///');
    expect(command).toContain(`readFileSync("/tmp/it'\\''s/devnet.json", "utf8")`);
    expect(command).not.toMatch(/macaroon=[0-9a-f]/);
  });
});
