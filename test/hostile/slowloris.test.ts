/**
 * Slow and oversized clients against the gateway as users run it (the built binary in a child
 * process, so its memory is its own): hundreds of connections dribbling a request head, bodies sent a
 * byte at a time, heads and bodies far over the limits. What must hold: every such connection is
 * answered (408, 413, 431) or cut once the configured timeout has passed (bounded by the test's own
 * generous deadline, never timed), an honest client is served throughout, and the gateway's resident
 * memory stays bounded.
 */
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanup,
  ensureBuilt,
  type Running,
  raw,
  spawnGateway,
  statuses,
  stop,
  tempDir,
  type Upstream,
  upstream,
} from '../faults/harness.js';

let up: Upstream;
let gateway: Running;

/** The child's resident set size in MiB, from /proc. */
function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

beforeAll(async () => {
  ensureBuilt();
  up = await upstream();
  const dir = tempDir();
  const file = join(dir, 'aperture.yaml');
  // Authentication is off: these limits hold before any token is looked at, and no Lightning
  // backend is needed to show it.
  writeFileSync(
    file,
    `listenaddr: "127.0.0.1:8081"
insecure: true
basedir: ${JSON.stringify(dir)}
debuglevel: error
readtimeout: 3s
idletimeout: 2s
authenticator:
  disable: true
limits:
  headerstimeout: 2s
  maxheaderbytes: 8192
  maxbodybytes: 1048576
services:
  - name: free
    pathregexp: '^/'
    address: "${up.address}"
    auth: off
`,
  );
  gateway = await spawnGateway(file);
}, 60_000);

afterAll(async () => {
  if (gateway !== undefined) expect(await stop(gateway)).toBe(0);
  await up?.close();
  cleanup();
});

/** Opens a connection that writes `head` one byte every `everyMs` and never finishes. */
function dribble(head: string, everyMs: number) {
  const socket = net.connect(gateway.port, '127.0.0.1');
  let text = '';
  let i = 0;
  const timer = setInterval(() => {
    if (i < head.length && !socket.destroyed) socket.write(head[i++]!);
  }, everyMs);
  socket.on('data', (d) => {
    text += d.toString('latin1');
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve();
    }),
  );
  return { socket, closed, text: () => text };
}

async function honest(): Promise<number> {
  const reply = await fetch(`${gateway.url}/hello`, { signal: AbortSignal.timeout(10_000) });
  await reply.arrayBuffer();
  return reply.status;
}

describe('slowloris', () => {
  it('cuts 300 connections dribbling a request head, serving an honest client meanwhile', async () => {
    const before = rssMiB(gateway.child.pid!);
    const head = `GET /hello HTTP/1.1\r\nHost: x\r\n${'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(50)}\r\n`;
    // Two waves: Node checks heads for their timeout on an interval of its own (30 s unless the
    // listener sets it), so one wave could be cut in time by luck; two waves 10 s apart cannot.
    for (let wave = 0; wave < 2; wave++) {
      const slow = Array.from({ length: 300 }, () => dribble(head, 200));
      await new Promise((r) => setTimeout(r, 500));
      expect(await honest()).toBe(200);
      // headerstimeout is 2 s; at 5 bytes/s the head would take minutes. 8 s leaves room for a
      // loaded machine while staying far below what a slowloris client needs.
      const deadline = new Promise<'late'>((r) => setTimeout(r, 8_000, 'late'));
      const outcome = await Promise.race([
        Promise.all(slow.map((s) => s.closed)).then(() => 'cut'),
        deadline,
      ]);
      expect(outcome).toBe('cut');
      for (const s of slow) expect(statuses(s.text()).every((c) => c === 408)).toBe(true);
      expect(await honest()).toBe(200);
      await new Promise((r) => setTimeout(r, 2_000));
    }
    expect(rssMiB(gateway.child.pid!) - before).toBeLessThan(64);
  }, 40_000);

  it('cuts a body sent a byte at a time once readtimeout has passed', async () => {
    const slow = dribble('x'.repeat(1_000), 100);
    slow.socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
    const outcome = await Promise.race([
      slow.closed.then(() => 'cut'),
      new Promise<'late'>((r) => setTimeout(r, 12_000, 'late')),
    ]);
    expect(outcome).toBe('cut');
    expect(statuses(slow.text()).filter((c) => c === 200)).toEqual([]);
  }, 30_000);

  it('resets an HTTP/2 (h2c) stream still dribbling its body once readtimeout has passed', async () => {
    const session = http2.connect(gateway.url);
    session.on('error', () => {});
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
      stream.on('error', () => {});
      // A byte every 500 ms keeps the session busy, so only a per-stream deadline can end it.
      const timer = setInterval(() => {
        if (!stream.destroyed) stream.write('x');
      }, 500);
      const outcome = await Promise.race([
        once(stream, 'close').then(() => 'cut'),
        new Promise<'late'>((r) => setTimeout(r, 12_000, 'late')),
      ]);
      clearInterval(timer);
      expect(outcome).toBe('cut');
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
    expect(await honest()).toBe(200);
  }, 30_000);

  it('closes a connection that opens and says nothing', async () => {
    const { closed } = await raw(gateway.port, '', 15_000);
    expect(closed).toBe(true);
  }, 20_000);
});

describe('oversized requests', () => {
  it('answers a head over maxheaderbytes with 431, one huge header or thousands of small ones', async () => {
    // Over the limit, just or far: the gateway answers 431 and closes. Closing on bytes it has not read
    // may reset the connection before the client reads the 431 (TCP, not the gateway, decides), so a
    // case may see nothing at all; but never anything other than a 431, never an open connection, and
    // the just-over case (one write, the whole head) gets its 431 in at least one of three tries.
    const justOver = `GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9_000)}\r\n\r\n`;
    const tries: { text: string; closed: boolean }[] = [];
    for (let i = 0; i < 3; i++) tries.push(await raw(gateway.port, justOver, 5_000));
    for (const { text, closed } of tries) {
      expect(statuses(text)).toEqual(text === '' ? [] : [431]);
      expect(closed).toBe(true);
    }
    expect(tries.some(({ text }) => statuses(text)[0] === 431)).toBe(true);
    for (const headers of [
      `X-Big: ${'a'.repeat(100_000)}\r\n`,
      Array.from({ length: 5_000 }, (_, i) => `X-${i}: v\r\n`).join(''),
      `Cookie: ${'c=1; '.repeat(4_000)}\r\n`,
    ]) {
      const { text, closed } = await raw(
        gateway.port,
        `GET /hello HTTP/1.1\r\nHost: x\r\n${headers}\r\n`,
        5_000,
      );
      expect(statuses(text)).toEqual(text === '' ? [] : [431]);
      expect(closed).toBe(true);
    }
    expect(await honest()).toBe(200);
  }, 30_000);

  it('answers bodies over maxbodybytes with 413, declared or chunked, and memory stays bounded', async () => {
    const before = rssMiB(gateway.child.pid!);
    const declared = await raw(
      gateway.port,
      'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n',
      5_000,
    );
    expect(statuses(declared.text)).toEqual([413]);
    // 64 MiB chunked, far past the 1 MiB limit: refused, and the gateway never holds it.
    const socket = net.connect(gateway.port, '127.0.0.1');
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
    });
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const frame = Buffer.concat([
      Buffer.from(`${chunk.length.toString(16)}\r\n`),
      chunk,
      Buffer.from('\r\n'),
    ]);
    for (let i = 0; i < 64 && !socket.destroyed; i++) {
      if (!socket.write(frame))
        await Promise.race([
          new Promise((r) => socket.once('drain', r)),
          new Promise((r) => socket.once('close', r)),
        ]);
    }
    await new Promise((r) => setTimeout(r, 500));
    // The gateway stopped reading: it answered 413 and closed, or the close reset the connection
    // before the answer was read. Never anything else, and never the whole body taken in.
    expect(socket.destroyed || socket.readableEnded).toBe(true);
    socket.destroy();
    expect(statuses(text)).toEqual(text === '' ? [] : [413]);
    expect(rssMiB(gateway.child.pid!) - before).toBeLessThan(64);
    expect(await honest()).toBe(200);
  }, 30_000);
});
