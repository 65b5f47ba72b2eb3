import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as nostrTools from 'nostr-tools';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../internal/bytes.js';
import * as Nostr from './nostr.js';

const vectorsText = readFileSync(new URL('../fixtures/nip44-vectors.json', import.meta.url), 'utf8');
const { v2 } = JSON.parse(vectorsText) as {
  v2: {
    valid: {
      get_conversation_key: { sec1: string; pub2: string; conversation_key: string }[];
      get_message_keys: {
        conversation_key: string;
        keys: { nonce: string; chacha_key: string; chacha_nonce: string; hmac_key: string }[];
      };
      calc_padded_len: [number, number][];
      encrypt_decrypt: {
        sec1: string;
        sec2: string;
        conversation_key: string;
        nonce: string;
        plaintext: string;
        payload: string;
      }[];
      encrypt_decrypt_long_msg: {
        conversation_key: string;
        nonce: string;
        pattern: string;
        repeat: number;
        plaintext_sha256: string;
        payload_sha256: string;
      }[];
    };
    invalid: {
      encrypt_msg_lengths: number[];
      get_conversation_key: { sec1: string; pub2: string; note: string }[];
      decrypt: {
        conversation_key: string;
        nonce: string;
        plaintext: string;
        payload: string;
        note: string;
      }[];
    };
  };
};

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function protocolError(run: () => unknown): void {
  expect(run).toThrow(expect.objectContaining({ name: 'BackendError', code: 'L402_BACKEND_PROTOCOL' }));
}

describe('NIP-44 v2 against the official vectors (paulmillr/nip44)', () => {
  it('uses the vector file NIP-44 publishes the checksum of', () => {
    expect(sha256Hex(vectorsText)).toBe('269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040');
  });

  it.each(v2.valid.get_conversation_key)('conversation key $conversation_key', (v) => {
    expect(toHex(Nostr.conversationKey(fromHex(v.sec1), fromHex(v.pub2)))).toBe(v.conversation_key);
  });

  it('message keys', () => {
    const { conversation_key, keys } = v2.valid.get_message_keys;
    expect(keys.length).toBe(32);
    for (const v of keys) {
      const derived = Nostr.messageKeys(fromHex(conversation_key), fromHex(v.nonce));
      expect(toHex(derived.chachaKey)).toBe(v.chacha_key);
      expect(toHex(derived.chachaNonce)).toBe(v.chacha_nonce);
      expect(toHex(derived.hmacKey)).toBe(v.hmac_key);
    }
  });

  it('padded lengths', () => {
    for (const [length, padded] of v2.valid.calc_padded_len) expect(Nostr.paddedLength(length)).toBe(padded);
  });

  it.each(v2.valid.encrypt_decrypt)('encrypts and decrypts $plaintext', (v) => {
    const sec1 = fromHex(v.sec1);
    const sec2 = fromHex(v.sec2);
    const key = Nostr.conversationKey(sec1, Nostr.publicKey(sec2));
    expect(toHex(key)).toBe(v.conversation_key);
    expect(Nostr.nip44Encrypt(v.plaintext, key, fromHex(v.nonce))).toBe(v.payload);
    const reverse = Nostr.conversationKey(sec2, Nostr.publicKey(sec1));
    expect(toHex(reverse)).toBe(v.conversation_key);
    expect(Nostr.nip44Decrypt(v.payload, reverse)).toBe(v.plaintext);
  });

  it.each(v2.valid.encrypt_decrypt_long_msg)('long message of $repeat × $pattern', (v) => {
    const plaintext = v.pattern.repeat(v.repeat);
    expect(sha256Hex(plaintext)).toBe(v.plaintext_sha256);
    const payload = Nostr.nip44Encrypt(plaintext, fromHex(v.conversation_key), fromHex(v.nonce));
    expect(sha256Hex(payload)).toBe(v.payload_sha256);
    expect(Nostr.nip44Decrypt(payload, fromHex(v.conversation_key))).toBe(plaintext);
  });

  it.each(v2.invalid.get_conversation_key)('refuses a conversation key: $note', (v) => {
    protocolError(() => Nostr.conversationKey(fromHex(v.sec1), fromHex(v.pub2)));
  });

  it.each(v2.invalid.decrypt)('refuses to decrypt: $note', (v) => {
    protocolError(() => Nostr.nip44Decrypt(v.payload, fromHex(v.conversation_key)));
  });

  it('refuses an empty plaintext, the one invalid length left since nips#1907', () => {
    expect(v2.invalid.encrypt_msg_lengths).toContain(0);
    protocolError(() => Nostr.nip44Encrypt('', fromHex(v2.valid.encrypt_decrypt[0]!.conversation_key)));
    protocolError(() => Nostr.paddedLength(0));
  });
});

describe('NIP-44 v2 extended length prefix (44.md, nostr-protocol/nips @ db5fe3de)', () => {
  const conversationKey = fromHex('c41c775356fd92eadc63ff5a0dc1da211b268cbea22316767095b2871ea1412d');
  const nonce = fromHex('0000000000000000000000000000000000000000000000000000000000000001');
  it.each([
    {
      length: 65535,
      paddedLength: 65536,
      plaintextSha256: '6e1bebca6a8229364a162a72ef064826c4cd7457bf54f190ef782bd9deff3e42',
      payloadSha256: '6d8c2810d1e870fbaa1f0a0937126cca837a15f9260e27060c331d70a3c0bc84',
    },
    {
      length: 65536,
      paddedLength: 65536,
      plaintextSha256: 'bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a',
      payloadSha256: 'b7b4edb36ba92e267d322d56d9aebc22e7fa96ff52e3c12adc07f07a43cbc616',
    },
    {
      length: 65537,
      paddedLength: 81920,
      plaintextSha256: '008ffc88d3c96a9f307524eb361e47c5222a887fc45fa0c1fb8d429c5c23b430',
      payloadSha256: 'eeb7c7c5373894ea2c1547cfd3ccb15d5a0b2d619da852e5c79df792dcc9e435',
    },
  ])('$length bytes of "a"', (v) => {
    const plaintext = 'a'.repeat(v.length);
    expect(sha256Hex(plaintext)).toBe(v.plaintextSha256);
    expect(Nostr.paddedLength(v.length)).toBe(v.paddedLength);
    const payload = Nostr.nip44Encrypt(plaintext, conversationKey, nonce);
    expect(sha256Hex(payload)).toBe(v.payloadSha256);
    expect(Nostr.nip44Decrypt(payload, conversationKey)).toBe(plaintext);
  });
});

describe('NIP-44 v2 and NIP-04 against nostr-tools, an independent implementation', () => {
  const alice = Nostr.randomSecretKey();
  const bob = Nostr.randomSecretKey();
  const alicePub = Nostr.publicKey(alice);
  const bobPub = Nostr.publicKey(bob);
  const message = JSON.stringify({ method: 'pay_invoice', params: { invoice: 'lnbcrt1…', amount: 21_000 } });

  it('NIP-44: the same conversation key, and each decrypts what the other encrypts', () => {
    const ours = Nostr.conversationKey(alice, bobPub);
    expect(toHex(ours)).toBe(toHex(nostrTools.nip44.getConversationKey(bob, toHex(alicePub))));
    expect(Nostr.nip44Decrypt(nostrTools.nip44.encrypt(message, ours), ours)).toBe(message);
    expect(nostrTools.nip44.decrypt(Nostr.nip44Encrypt(message, ours), ours)).toBe(message);
  });

  it('NIP-04: each decrypts what the other encrypts', () => {
    const theirs = nostrTools.nip04.encrypt(alice, toHex(bobPub), message);
    expect(Nostr.nip04Decrypt(theirs, bob, alicePub)).toBe(message);
    const ours = Nostr.nip04Encrypt(message, bob, alicePub);
    expect(ours).toMatch(/^[A-Za-z0-9+/]+=*\?iv=[A-Za-z0-9+/]{22}==$/);
    expect(nostrTools.nip04.decrypt(alice, toHex(bobPub), ours)).toBe(message);
  });

  it('events: the same id, and each verifies what the other signs', () => {
    const template = {
      kind: 23194,
      created_at: 1_700_000_000,
      tags: [['p', toHex(bobPub)]],
      content: 'a\n"b"\\\t🦄',
    };
    const ours = Nostr.sign(template, alice);
    const asTheyType = { ...ours, tags: ours.tags.map((t) => [...t]) };
    expect(ours.id).toBe(nostrTools.getEventHash(asTheyType));
    expect(nostrTools.verifyEvent(asTheyType)).toBe(true);
    const theirs = nostrTools.finalizeEvent({ ...template, tags: [['p', toHex(bobPub)]] }, alice);
    expect(Nostr.verify(theirs)).toBe(true);
    // BIP-340 signatures carry fresh randomness, so only the ids must agree.
    expect(theirs.id).toBe(ours.id);
  });
});

describe('NIP-04', () => {
  const alice = Nostr.randomSecretKey();
  const bob = Nostr.randomSecretKey();
  const alicePub = Nostr.publicKey(alice);
  const bobPub = Nostr.publicKey(bob);

  it('round-trips text of every size class, either direction', () => {
    for (const text of ['x', 'sixteen bytes!!!', '{"result_type":"get_balance"}', 'ü'.repeat(5000)]) {
      expect(Nostr.nip04Decrypt(Nostr.nip04Encrypt(text, alice, bobPub), bob, alicePub)).toBe(text);
      expect(Nostr.nip04Decrypt(Nostr.nip04Encrypt(text, bob, alicePub), alice, bobPub)).toBe(text);
    }
  });

  it('uses the given IV, and a fresh random one otherwise', () => {
    const iv = new Uint8Array(16).fill(7);
    expect(Nostr.nip04Encrypt('hi', alice, bobPub, iv)).toBe(Nostr.nip04Encrypt('hi', alice, bobPub, iv));
    expect(Nostr.nip04Encrypt('hi', alice, bobPub)).not.toBe(Nostr.nip04Encrypt('hi', alice, bobPub));
  });

  it('refuses malformed content', () => {
    const good = Nostr.nip04Encrypt('hello', alice, bobPub);
    protocolError(() => Nostr.nip04Decrypt('hello', bob, alicePub));
    protocolError(() => Nostr.nip04Decrypt(good.replace('?iv=', '?IV='), bob, alicePub));
    protocolError(() => Nostr.nip04Decrypt(`${good.split('?')[0]}?iv=AAAA`, bob, alicePub));
    protocolError(() => Nostr.nip04Decrypt(`AAAA?iv=${good.split('?iv=')[1]}`, bob, alicePub));
  });

  it('does not decrypt under another key (bad padding or not UTF-8, almost always)', () => {
    const eve = Nostr.randomSecretKey();
    const content = Nostr.nip04Encrypt('{"method":"get_info","params":{}}', alice, bobPub);
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        Nostr.nip04Decrypt(content, Nostr.randomSecretKey(), alicePub);
      } catch {
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(15);
    expect(() => Nostr.nip04Decrypt(content, eve, alicePub)).toThrow();
  });
});

describe('events', () => {
  // Signed by nostr-tools, not by this module. (NIP-47's elsewhere example event cannot serve: its id is
  // not the hash of its fields, at db5fe3de nor as first published in 32b9f3f4.)
  const author = fromHex('0f7b7c8ab0e7a0a9bd0b1b4fa1c9e1b0f2a3c4d5e6f708192a3b4c5d6e7f8091');
  // Through JSON, as events travel: nostr-tools marks the object it returns with a symbol.
  const elsewhere: Nostr.Event = JSON.parse(
    JSON.stringify(
      nostrTools.finalizeEvent(
        {
          created_at: 1713883677,
          kind: 13194,
          tags: [
            ['encryption', 'nip44_v2 nip04'],
            ['notifications', 'payment_received payment_sent'],
          ],
          content: 'pay_invoice get_balance get_info make_invoice lookup_invoice notifications',
        },
        author,
      ),
    ),
  );

  it('verifies an event signed elsewhere, and nothing altered from it', () => {
    expect(Nostr.eventId(elsewhere)).toBe(elsewhere.id);
    expect(Nostr.verify(elsewhere)).toBe(true);
    expect(Nostr.verify({ ...elsewhere, content: `${elsewhere.content} ` })).toBe(false);
    expect(Nostr.verify({ ...elsewhere, created_at: elsewhere.created_at + 1 })).toBe(false);
    const sig = `${elsewhere.sig.slice(0, -1)}${elsewhere.sig.endsWith('8') ? '9' : '8'}`;
    expect(Nostr.verify({ ...elsewhere, sig })).toBe(false);
    // A valid signature under another key, over a correctly recomputed id, is still not the author's.
    const forged = Nostr.sign({ ...elsewhere }, Nostr.randomSecretKey());
    const claimed = { ...forged, pubkey: elsewhere.pubkey };
    expect(Nostr.verify({ ...claimed, id: Nostr.eventId(claimed) })).toBe(false);
  });

  it('signs with the given time, or now', () => {
    const secret = Nostr.randomSecretKey();
    const event = Nostr.sign({ kind: 1, content: 'hi' }, secret, () => 1_700_000_000_999);
    expect(event).toMatchObject({
      kind: 1,
      content: 'hi',
      tags: [],
      created_at: 1_700_000_000,
      pubkey: toHex(Nostr.publicKey(secret)),
    });
    expect(Nostr.verify(event)).toBe(true);
    expect(
      Math.abs(Nostr.sign({ kind: 1, content: '' }, secret).created_at - Date.now() / 1000),
    ).toBeLessThan(5);
  });

  it('serializes as NIP-01 says: compact JSON, content escaped only where JSON must', () => {
    const event = {
      pubkey: 'ab'.repeat(32),
      created_at: 1,
      kind: 1,
      tags: [['t', 'x']],
      content: 'line\nquote"slash\\é',
    };
    expect(new TextDecoder().decode(Nostr.serialize(event))).toBe(
      `[0,"${'ab'.repeat(32)}",1,1,[["t","x"]],"line\\nquote\\"slash\\\\é"]`,
    );
    expect(Nostr.serialize(event)).toEqual(
      utf8(JSON.stringify([0, event.pubkey, 1, 1, event.tags, event.content])),
    );
  });

  it('parses the shape of an event and names what is wrong', () => {
    expect(Nostr.parseEvent({ ...elsewhere, extra: 1 })).toEqual(elsewhere);
    const bad: [string, unknown][] = [
      ['an event must be an object', null],
      ['event id', { ...elsewhere, id: elsewhere.id.toUpperCase() }],
      ['event pubkey', { ...elsewhere, pubkey: 'ab' }],
      ['created_at', { ...elsewhere, created_at: 1.5 }],
      ['kind', { ...elsewhere, kind: 70000 }],
      ['tags', { ...elsewhere, tags: [['e', 1]] }],
      ['content', { ...elsewhere, content: 5 }],
      ['sig', { ...elsewhere, sig: 'zz' }],
    ];
    for (const [message, value] of bad) {
      expect(() => Nostr.parseEvent(value)).toThrow(message);
    }
  });
});

describe('filters', () => {
  const secret = Nostr.randomSecretKey();
  const event = Nostr.sign(
    {
      kind: 23195,
      created_at: 1000,
      tags: [['p', 'aa'.repeat(32)], ['e', 'bb'.repeat(32), 'wss://x'], ['t']],
      content: '',
    },
    secret,
  );

  it('matches on every condition at once, any value of a list', () => {
    expect(Nostr.matches({}, event)).toBe(true);
    expect(
      Nostr.matches({ ids: [event.id], authors: ['00'.repeat(32), event.pubkey], kinds: [1, 23195] }, event),
    ).toBe(true);
    expect(Nostr.matches({ kinds: [23194] }, event)).toBe(false);
    expect(Nostr.matches({ authors: ['00'.repeat(32)] }, event)).toBe(false);
    expect(Nostr.matches({ since: 1000, until: 1000 }, event)).toBe(true);
    expect(Nostr.matches({ since: 1001 }, event)).toBe(false);
    expect(Nostr.matches({ until: 999 }, event)).toBe(false);
    expect(Nostr.matches({ '#e': ['bb'.repeat(32)], '#p': ['aa'.repeat(32)] }, event)).toBe(true);
    expect(Nostr.matches({ '#e': ['wss://x'] }, event)).toBe(false); // only a tag's first value is indexed
    expect(Nostr.matches({ '#t': [''] }, event)).toBe(false);
    expect(Nostr.matches({ limit: 0 }, event)).toBe(true);
  });

  it('parses filters and refuses what it does not understand', () => {
    expect(Nostr.parseFilter({ kinds: [1], '#p': ['x'], limit: 1 })).toEqual({
      kinds: [1],
      '#p': ['x'],
      limit: 1,
    });
    for (const bad of [
      [],
      { ids: ['AB'] },
      { kinds: ['1'] },
      { since: -1 },
      { '#pp': ['x'] },
      { search: 'x' },
    ]) {
      protocolError(() => Nostr.parseFilter(bad));
    }
  });
});
