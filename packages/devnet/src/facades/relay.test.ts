import { Nostr } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import * as Relay from './relay.js';

/** A raw client: what the relay sends back, message by message. */
async function raw(url: string) {
  const socket = new WebSocket(url);
  const inbox: unknown[][] = [];
  const waiting: { test: (m: unknown[]) => boolean; resolve: (m: unknown[]) => void }[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as unknown[];
    const at = waiting.findIndex((w) => w.test(message));
    if (at >= 0) waiting.splice(at, 1)[0]!.resolve(message);
    else inbox.push(message);
  });
  await new Promise((resolve) => socket.once('open', resolve));
  const next = (test: (m: unknown[]) => boolean, timeoutMs = 2000) =>
    new Promise<unknown[]>((resolve, reject) => {
      const at = inbox.findIndex(test);
      if (at >= 0) return resolve(inbox.splice(at, 1)[0]!);
      const timer = setTimeout(() => reject(new Error(`no such message within ${timeoutMs} ms`)), timeoutMs);
      waiting.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  return {
    send: (message: unknown) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next,
    ok: (id: string) => next((m) => m[0] === 'OK' && m[1] === id),
    /** Stored events of a REQ, in order, until EOSE. */
    async request(sub: string, ...filters: unknown[]) {
      socket.send(JSON.stringify(['REQ', sub, ...filters]));
      await next((m) => m[0] === 'EOSE' && m[1] === sub);
      const events = inbox.filter((m) => m[0] === 'EVENT' && m[1] === sub);
      for (const m of events) inbox.splice(inbox.indexOf(m), 1);
      return events.map((m) => m[2] as Nostr.Event);
    },
    close: () => socket.close(),
  };
}

describe('Relay', () => {
  let relay: Relay.Relay;
  const alice = Nostr.randomSecretKey();
  const bob = Nostr.randomSecretKey();
  const bobPub = Buffer.from(Nostr.publicKey(bob)).toString('hex');

  beforeAll(async () => {
    relay = await Relay.start();
  });
  afterAll(async () => {
    await relay.close();
  });

  it('listens on loopback', () => {
    expect(relay.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
  });

  it('accepts a valid event, stores it and answers REQ with it, then EOSE', async () => {
    const client = await raw(relay.url);
    const event = Nostr.sign({ kind: 1, tags: [['p', bobPub]], content: 'hello' }, alice);
    client.send(['EVENT', event]);
    expect(await client.ok(event.id)).toEqual(['OK', event.id, true, '']);
    client.send(['EVENT', event]);
    expect(await client.ok(event.id)).toEqual(['OK', event.id, true, 'duplicate: already have this event']);
    expect(await client.request('s', { ids: [event.id] })).toEqual([event]);
    client.close();
  });

  it('refuses an event whose id or signature does not hold, with a reason', async () => {
    const client = await raw(relay.url);
    const event = Nostr.sign({ kind: 1, content: 'original' }, alice);
    const altered = { ...event, content: 'altered' };
    client.send(['EVENT', altered]);
    expect(await client.ok(event.id)).toEqual([
      'OK',
      event.id,
      false,
      'invalid: the event id is not the hash of its content',
    ]);
    const other = Nostr.sign({ kind: 1, content: 'other' }, alice);
    const resigned = { ...event, sig: other.sig };
    client.send(['EVENT', resigned]);
    expect(await client.ok(event.id)).toEqual(['OK', event.id, false, 'invalid: bad signature']);
    client.send(['EVENT', { ...event, kind: -1 }]);
    const [, , accepted, reason] = await client.ok(event.id);
    expect(accepted).toBe(false);
    expect(reason).toMatch(/^invalid: event kind/);
    expect(relay.events().some((e) => e.id === event.id)).toBe(false);
    client.close();
  });

  it('relays ephemeral events live and never stores them', async () => {
    const listener = await raw(relay.url);
    await listener.request('live', { kinds: [23194], '#p': [bobPub] });
    const publisher = await raw(relay.url);
    const event = Nostr.sign({ kind: 23194, tags: [['p', bobPub]], content: 'request' }, alice);
    const unrelated = Nostr.sign(
      { kind: 23194, tags: [['p', 'ab'.repeat(32)]], content: 'not for bob' },
      alice,
    );
    publisher.send(['EVENT', unrelated]);
    publisher.send(['EVENT', event]);
    expect(await publisher.ok(event.id)).toEqual(['OK', event.id, true, '']);
    expect(await listener.next((m) => m[0] === 'EVENT')).toEqual(['EVENT', 'live', event]);
    expect(relay.events().some((e) => e.kind === 23194)).toBe(false);
    // CLOSE ends delivery.
    listener.send(['CLOSE', 'live']);
    const later = Nostr.sign({ kind: 23194, tags: [['p', bobPub]], content: 'later' }, alice);
    const witness = await raw(relay.url);
    await witness.request('w', { ids: [later.id] });
    publisher.send(['EVENT', later]);
    await witness.next((m) => m[0] === 'EVENT' && m[1] === 'w');
    // The relay sends to every subscriber in one pass: had the listener been sent it, it would be here.
    await expect(listener.next((m) => m[0] === 'EVENT', 200)).rejects.toThrow('no such message');
    for (const c of [listener, publisher, witness]) c.close();
  });

  it('keeps only the newest replaceable event per author and kind (the NIP-47 info event)', async () => {
    const client = await raw(relay.url);
    const wallet = Nostr.randomSecretKey();
    const walletPub = Buffer.from(Nostr.publicKey(wallet)).toString('hex');
    const first = Nostr.sign({ kind: 13194, created_at: 1000, content: 'get_info' }, wallet);
    const second = Nostr.sign({ kind: 13194, created_at: 2000, content: 'get_info pay_invoice' }, wallet);
    const stale = Nostr.sign({ kind: 13194, created_at: 1500, content: 'stale' }, wallet);
    for (const event of [first, second, stale]) client.send(['EVENT', event]);
    expect((await client.ok(stale.id))[3]).toBe('duplicate: a newer version is stored');
    expect(await client.request('info', { kinds: [13194], authors: [walletPub] })).toEqual([second]);
    // Another author's info event is kept beside it.
    const other = Nostr.sign({ kind: 13194, created_at: 1000, content: 'x' }, alice);
    client.send(['EVENT', other]);
    await client.ok(other.id);
    expect(await client.request('both', { kinds: [13194], authors: [walletPub, other.pubkey] })).toEqual([
      second,
      other,
    ]);
    client.close();
  });

  it('filters by authors, kinds, tags, since, until and limit (newest first), any filter of a REQ', async () => {
    const client = await raw(relay.url);
    const author = Nostr.randomSecretKey();
    const pub = Buffer.from(Nostr.publicKey(author)).toString('hex');
    const events = [100, 200, 300, 400].map((t) =>
      Nostr.sign(
        { kind: 7, created_at: t, tags: [['e', `${t}`.padStart(64, '0')]], content: String(t) },
        author,
      ),
    );
    for (const event of events) client.send(['EVENT', event]);
    await client.ok(events[3]!.id);
    const [e100, e200, e300, e400] = events;
    expect(await client.request('a', { authors: [pub] })).toEqual([e400, e300, e200, e100]);
    expect(await client.request('b', { authors: [pub], since: 200, until: 300 })).toEqual([e300, e200]);
    expect(await client.request('c', { authors: [pub], limit: 2 })).toEqual([e400, e300]);
    expect(await client.request('d', { '#e': ['100'.padStart(64, '0')] })).toEqual([e100]);
    expect(await client.request('e', { authors: [pub], kinds: [8] })).toEqual([]);
    expect(await client.request('f', { ids: [e100!.id] }, { ids: [e400!.id] })).toEqual([e400, e100]);
    client.close();
  });

  it('answers malformed messages with NOTICE and bad filters with CLOSED', async () => {
    const client = await raw(relay.url);
    client.send('not json');
    expect(await client.next((m) => m[0] === 'NOTICE')).toEqual(['NOTICE', 'invalid: not JSON']);
    client.send({ EVENT: 1 });
    expect(await client.next((m) => m[0] === 'NOTICE')).toEqual([
      'NOTICE',
      'invalid: a message is a JSON array',
    ]);
    client.send(['AUTH', 'x']);
    expect((await client.next((m) => m[0] === 'NOTICE'))[1]).toMatch(/unknown message type/);
    client.send(['REQ', 'bad', { authors: ['not hex'] }]);
    expect(await client.next((m) => m[0] === 'CLOSED')).toEqual([
      'CLOSED',
      'bad',
      'invalid: filter authors must list 32-byte lower-case hex values',
    ]);
    client.send(['REQ', 'x'.repeat(65), {}]);
    expect((await client.next((m) => m[0] === 'NOTICE'))[1]).toMatch(/subscription id/);
    client.close();
  });

  it('works with the l402 Nostr client: publish, then a subscription sees stored and live events', async () => {
    const connection = await Nostr.connect(relay.url, { WebSocket });
    const stored = Nostr.sign({ kind: 30078, tags: [['d', 'x']], content: 'addressable' }, alice);
    expect(await connection.publish(stored)).toBe('');
    const seen: Nostr.Event[] = [];
    const sub = connection.subscribe([{ authors: [stored.pubkey], kinds: [30078, 20001] }], {
      event: (e) => seen.push(e),
    });
    await sub.stored;
    expect(seen).toEqual([stored]);
    const live = Nostr.sign({ kind: 20001, content: 'ephemeral' }, alice);
    await connection.publish(live);
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[1]).toEqual(live);
    const refused = { ...Nostr.sign({ kind: 1, content: 'x' }, alice), content: 'y' };
    await expect(connection.publish(refused)).rejects.toMatchObject({ code: 'L402_BACKEND_PROTOCOL' });
    connection.close();
    await expect(connection.publish(live)).rejects.toMatchObject({ code: 'L402_BACKEND_UNREACHABLE' });
  });

  it('closing the relay disconnects its clients', async () => {
    const own = await Relay.start();
    const connection = await Nostr.connect(own.url, { WebSocket });
    const lost = new Promise((resolve) => connection.onClose(resolve));
    await own.close();
    await lost;
    expect(connection.isOpen).toBe(false);
    await expect(Nostr.connect(own.url, { WebSocket })).rejects.toMatchObject({
      code: 'L402_BACKEND_UNREACHABLE',
    });
  });
});
