/**
 * What the fault and hostile-input tests share: the gateway as users run it (the built `l402`
 * binary in a child process, so it can be killed with SIGKILL), an upstream that records what
 * reached it, private PostgreSQL and Redis servers the test may stop and start (never the machine's
 * shared ones), buying a token from the devnet, and raw TCP requests.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Challenge, Credential, Macaroon } from 'l402';
import type { Backend } from 'l402/lightning';

export const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/l402.js');

/** A temporary directory, removed by {@link cleanup}. */
const dirs: string[] = [];
export function tempDir(prefix = 'l402-faults-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

const children = new Set<ChildProcess>();

/** Kills every child still running and removes the temporary directories. */
export function cleanup(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

/** Newest modification time of the TypeScript sources the binary is built from. */
function newestSource(): number {
  let newest = 0;
  for (const pkg of ['cli', 'l402', 'devnet', 'gateway']) {
    const dir = join(root, 'packages', pkg, 'src');
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.ts') && !file.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(join(dir, file)).mtimeMs);
    }
  }
  return newest;
}

/** Builds `dist/` when a source is newer, so the child runs the code under test. */
export function ensureBuilt(): void {
  const built = join(root, 'packages/cli/dist/main.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestSource()) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], {
      cwd: root,
      stdio: 'pipe',
    });
  }
}

/** A gateway child process. */
export interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

export interface SpawnOptions {
  readonly listen?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Run under `sh -c 'ulimit -f N; exec node …'`: a file-size limit in 512-byte blocks. */
  readonly fileSizeLimitBlocks?: number;
}

/**
 * Starts `l402 gateway --config <file>` and waits for its banner; rejects with its stderr when it
 * exits first.
 */
export async function spawnGateway(config: string, options: SpawnOptions = {}): Promise<Running> {
  const args = [bin, 'gateway', '--config', config, '--listen', options.listen ?? '127.0.0.1:0'];
  const env = { ...process.env, ...options.env };
  const child =
    options.fileSizeLimitBlocks === undefined
      ? spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(
          'sh',
          ['-c', `ulimit -f ${options.fileSizeLimitBlocks}; exec "$0" "$@"`, process.execPath, ...args],
          { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
        );
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('Ctrl-C stops it.')) resolve(stdout);
    });
    void exited.then((code) => reject(new GatewayExited(code, stderr)));
  });
  const url = /listening on (http:\/\/\S+)/.exec(banner)![1]!;
  return { child, url, port: Number(new URL(url).port), stderr: () => stderr, exited };
}

/** The gateway child exited before printing its banner. */
export class GatewayExited extends Error {
  constructor(
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`gateway exited with ${code}: ${stderr}`);
  }
}

/** SIGKILL, and wait for the exit. */
export async function kill9(running: Running): Promise<void> {
  if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
  await running.exited;
}

/** SIGTERM (graceful), and the exit code. */
export async function stop(running: Running): Promise<number | null> {
  if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGTERM');
  return running.exited;
}

/** A TCP port nobody listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** An upstream whose behaviour the test switches: normal, slow, resetting, or garbage. */
export interface Upstream {
  readonly server: http.Server;
  readonly address: string;
  mode: 'ok' | 'slow' | 'reset' | 'garbage';
  slowMs: number;
  /** Requests that reached it, with the Authorization headers they carried (joined with `, `). */
  readonly seen: { url: string; host: string | undefined; authorization: string | undefined }[];
  close(): Promise<void>;
}

export async function upstream(): Promise<Upstream> {
  const state: Upstream = {
    server: undefined as unknown as http.Server,
    address: '',
    mode: 'ok',
    slowMs: 2_000,
    seen: [],
    close: async () => {},
  };
  const server = http.createServer(async (request, response) => {
    state.seen.push({
      url: request.url!,
      host: request.headers.host,
      authorization:
        request.rawHeaders
          .filter((_, i) => i % 2 === 1 && request.rawHeaders[i - 1]!.toLowerCase() === 'authorization')
          .join(', ') || undefined,
    });
    try {
      for await (const _ of request);
    } catch {
      return; // the gateway gave up on this request (a body over its limit): nothing to answer
    }
    if (state.mode === 'reset') {
      request.socket.resetAndDestroy();
      return;
    }
    if (state.mode === 'garbage') {
      request.socket.end('NOT HTTP AT ALL\r\n\x00\x01\x02\r\n\r\n');
      return;
    }
    if (state.mode === 'slow') await new Promise((r) => setTimeout(r, state.slowMs));
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ ok: true, url: request.url }));
  });
  server.keepAliveTimeout = 1_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  Object.assign(state, {
    server,
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
  return state;
}

/** Buys a token: the 402's challenge paid with `payer`; returns the Authorization header value. */
export async function buy(
  reply: { headers: Headers } | { status: number; wwwAuthenticate: string[] },
  payer: Backend,
): Promise<{ authorization: string; tokenId: string; paymentHash: string }> {
  const values =
    'headers' in reply ? reply.headers.get('www-authenticate') : (reply.wwwAuthenticate as string[]);
  const offer = Challenge.l402(Challenge.parse(values))!;
  const macaroon = Macaroon.decode(offer.macaroon);
  const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
  const { Identifier } = await import('l402');
  const id = Identifier.decode(macaroon.identifier);
  return {
    authorization: Credential.format({ macaroon, preimage }),
    tokenId: Buffer.from(id.tokenId).toString('hex'),
    paymentHash: Buffer.from(id.paymentHash).toString('hex'),
  };
}

/**
 * Writes `bytes` on a fresh TCP connection and collects what comes back until the peer closes or
 * `waitMs` passes; `closed` says whether the gateway closed the connection.
 */
export async function raw(
  port: number,
  bytes: string | Buffer,
  waitMs = 2_000,
): Promise<{ text: string; closed: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let text = '';
  socket.on('data', (d) => {
    text += d.toString('latin1');
  });
  socket.on('error', () => {});
  socket.write(bytes);
  // Not events.once: it rejects when the socket errors (a reset) before closing, and a reset is an
  // answer these tests expect.
  const closed = await Promise.race([
    new Promise<boolean>((r) => socket.once('close', () => r(true))),
    new Promise<boolean>((r) => setTimeout(r, waitMs, false)),
  ]);
  socket.destroy();
  return { text, closed };
}

/** The status codes of every HTTP response in a raw byte stream, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

// ——— private PostgreSQL and Redis ———

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A PostgreSQL server of the test's own, on a free port, that it may stop and start. */
export interface PrivatePostgres {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  /** Fast shutdown (SIGINT): open connections are cut. */
  stop(): Promise<void>;
}

/** Whether a private PostgreSQL can run here (the binaries exist). */
export const havePostgres = existsSync(join(PG_BIN, 'initdb'));

/**
 * Creates a cluster in a temporary directory (as the `postgres` user when running as root, which
 * `initdb` refuses) and starts it on a free port with trust authentication.
 */
export async function privatePostgres(): Promise<PrivatePostgres> {
  const dir = tempDir('l402-pg-');
  const data = join(dir, 'data');
  mkdirSync(data);
  // initdb refuses to run as root: then the cluster is the `postgres` user's, and so is the server.
  let user: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    user = { uid: id('-u'), gid: id('-g') };
    chownSync(dir, user.uid, user.gid);
    chownSync(data, user.uid, user.gid);
  }
  execFileSync(join(PG_BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], {
    stdio: 'pipe',
    cwd: dir,
    ...user,
  });
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      join(PG_BIN, 'postgres'),
      ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'],
      { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir, ...user },
    );
    children.add(child);
    let log = '';
    child.stderr!.on('data', (d) => {
      log += d;
    });
    const deadline = Date.now() + 20_000;
    while (!log.includes('ready to accept connections')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`postgres did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopPg = async () => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    // SIGINT is PostgreSQL's fast shutdown: sessions are cut, nothing waits for clients.
    const done = once(child, 'exit');
    child.kill('SIGINT');
    await done;
  };
  await start();
  return { port, url: `postgres://postgres@127.0.0.1:${port}/postgres`, start, stop: stopPg };
}

/** What a {@link FaultProxy} does with each request. */
export type Fault = 'pass' | 'down' | 'slow' | 'reset' | 'garbage' | 'html500' | 'badjson';

/** An HTTP proxy in front of a plain-HTTP service that misbehaves on demand. */
export interface FaultProxy {
  readonly port: number;
  /** Switches the behaviour; `down` closes the port (connection refused) until switched back. */
  set(fault: Fault): Promise<void>;
  /** Delay of `slow`, in ms. */
  slowMs: number;
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` (`host:port`) unchanged, or fails it the chosen way: closed
 * port, a delay, a reset connection, bytes that are not HTTP, a 500 HTML page, or 200 with a body
 * that is not the JSON the caller expects.
 */
export async function faultProxy(target: string): Promise<FaultProxy> {
  let fault: Fault = 'pass';
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const server = http.createServer(async (request, response) => {
    const body: Buffer[] = [];
    try {
      for await (const chunk of request) body.push(chunk as Buffer);
    } catch {
      return;
    }
    const now = fault;
    if (now === 'reset') return request.socket.resetAndDestroy();
    if (now === 'garbage') return request.socket.end('\x00\x01garbage\r\n\r\n');
    if (now === 'html500') {
      response.writeHead(500, { 'content-type': 'text/html' });
      return response.end('<html><body>Internal Server Error</body></html>');
    }
    if (now === 'badjson') {
      response.writeHead(200, { 'content-type': 'application/json' });
      return response.end('{"bolt11": 42, "payment_hash": null, "unexpected": [');
    }
    if (now === 'slow') await new Promise((r) => setTimeout(r, proxy.slowMs));
    const forwarded = http.request(
      { host, port, method: request.method, path: request.url, headers: request.headers },
      (reply) => {
        response.writeHead(reply.statusCode!, reply.headers);
        reply.pipe(response);
      },
    );
    forwarded.on('error', () => response.destroy());
    forwarded.end(Buffer.concat(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as net.AddressInfo).port;
  const proxy: FaultProxy = {
    port: bound,
    slowMs: 2_000,
    async set(next) {
      if (next === 'down' && fault !== 'down') {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      } else if (next !== 'down' && fault === 'down') {
        server.listen(bound, '127.0.0.1');
        await once(server, 'listening');
      }
      fault = next;
    },
    async close() {
      if (fault === 'down') return;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  return proxy;
}
