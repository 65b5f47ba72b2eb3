/**
 * Test harness of the paying commands (not built into dist/): a devnet in the test process, a paid
 * `node:http` server on loopback whose invoices come from the devnet merchant, client homes that find
 * the devnet payer through `devnet.json`, and the BUILT `l402` binary run as a child process. The child
 * is spawned asynchronously: the devnet it pays through lives in this process's event loop.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Devnet } from '@l402/devnet';
import * as NodeL402 from 'l402/node';
import { afterAll, beforeAll } from 'vitest';

export const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'packages/cli/bin/l402.js');
const built = join(root, 'packages/cli/dist/main.js');

/** Builds the binary when any source it is built from is newer than dist/. */
export function ensureBuilt(): void {
  let newest = 0;
  for (const pkg of ['cli', 'l402', 'devnet', 'gateway']) {
    const dir = join(root, 'packages', pkg, 'src');
    for (const file of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      if (file.endsWith('.ts') && !file.endsWith('.test.ts'))
        newest = Math.max(newest, statSync(join(dir, file)).mtimeMs);
    }
  }
  if (!existsSync(built) || statSync(built).mtimeMs < newest) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], {
      cwd: root,
      stdio: 'pipe',
    });
  }
}

export interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly raw: Buffer;
}

/**
 * Runs the built `l402` with `args`, `L402_HOME=home` and no other `L402_*` variable unless given.
 */
export async function l402(
  args: readonly string[],
  o: { home: string; env?: Record<string, string>; stdin?: string | Buffer; cwd?: string },
): Promise<Result> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('L402_') && v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: o.cwd ?? root,
    env: { ...env, L402_HOME: o.home, ...o.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  child.stdin.end(o.stdin ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  const raw = Buffer.concat(out);
  return { code, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw };
}

export interface RunningGateway {
  readonly child: ChildProcess;
  /** Everything printed before "Ctrl-C stops it." */
  readonly banner: string;
  /** Where it listens, from the banner. */
  readonly url: string;
  stderr(): string;
}

/**
 * Starts the built `l402 gateway --home <home> --listen 127.0.0.1:0` and waits for its banner; the
 * child is pushed to `children` at once, so the caller can kill it whatever happens.
 *
 * @example
 * const { url } = await startGateway(home, children);
 */
export async function startGateway(home: string, children: ChildProcess[]): Promise<RunningGateway> {
  const child = spawn(process.execPath, [bin, 'gateway', '--home', home, '--listen', '127.0.0.1:0'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const banner = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      if (stdout.includes('Ctrl-C stops it.')) resolve(stdout);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${stderr}`)));
  });
  const url = /listening on (http:\/\/\S+)/.exec(banner)?.[1];
  if (url === undefined) throw new Error(`no address in the gateway's banner: ${banner}`);
  return { child, banner, url, stderr: () => stderr };
}

/** A fresh client home; with `devnet`, it holds the devnet's `devnet.json`, so the payer is the default wallet. */
export function clientHome(devnet?: Devnet.Devnet, files: Record<string, string> = {}): string {
  const home = mkdtempSync(join(tmpdir(), 'l402-cli-home-'));
  if (devnet !== undefined) writeFileSync(join(home, 'devnet.json'), JSON.stringify(devnet.document));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(home, name), text);
  homes.push(home);
  return home;
}
const homes: string[] = [];

/** A 2 MiB body (for `-o` and the progress bar). */
export const BIG = Buffer.alloc(2 << 20, 'l402 ');

export interface World {
  readonly devnet: Devnet.Devnet;
  /** `http://127.0.0.1:port` of the paid server. */
  readonly url: string;
  /** How many requests reached a paid handler, by route. */
  readonly hits: Record<string, number>;
  /** Bodies the POST /echo handler received. */
  readonly bodies: Buffer[];
  close(): Promise<void>;
}

/**
 * The devnet (merchant, payer) and a server with: `GET /paid` and `GET /counted` (21 sat, service api), `POST /echo` (21 sat,
 * echoes the body), `GET /big` (21 sat, 2 MiB), `GET /expensive` (500 sat), `GET /notes` and
 * `POST /notes` (10 sat, service notes, needing `read` / `write`), `GET /free`, and 404 elsewhere.
 */
export async function startWorld(options: { nodes?: string[] } = {}): Promise<World> {
  const devnet = await Devnet.start({
    home: mkdtempSync(join(tmpdir(), 'l402-cli-devnet-')),
    publish: false,
    ...(options.nodes !== undefined ? { nodes: options.nodes } : {}),
  });
  const paywall = NodeL402.l402({
    backend: devnet.document.nodes.merchant?.uris.lnd as string,
    masterKey: 'c3'.repeat(32),
  });
  const hits: Record<string, number> = {};
  const bodies: Buffer[] = [];
  const hit = (name: string) => {
    hits[name] = (hits[name] ?? 0) + 1;
  };
  const api = { service: 'api', price: 21, timeout: 3600 };
  const notes = { service: 'notes', price: 10, capabilities: ['read', 'write'] };
  const routes: Record<string, http.RequestListener> = {
    'GET /free': (_req, res) => res.end('free\n'),
    'GET /cut': (_req, res) => {
      res.writeHead(200, { 'content-length': 100_000 });
      res.write('the beginning', () => res.destroy());
    },
    'GET /go': (_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', '/paid');
      res.end();
    },
    'GET /paid': paywall.protect(api, (_req, res) => {
      hit('paid');
      res.setHeader('content-type', 'text/plain');
      res.setHeader('x-served', 'paid');
      res.end('hello, paid world\n');
    }),
    'GET /counted': paywall.protect(api, (_req, res) => {
      hit('counted');
      res.end('hello, paid world\n');
    }),
    'POST /echo': paywall.protect(api, async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      hit('echo');
      bodies.push(Buffer.concat(chunks));
      res.setHeader('content-type', req.headers['content-type'] ?? 'application/octet-stream');
      res.end(Buffer.concat(chunks));
    }),
    'GET /big': paywall.protect(api, (_req, res) => {
      hit('big');
      res.setHeader('content-length', BIG.length);
      res.end(BIG);
    }),
    'GET /expensive': paywall.protect({ service: 'gold', price: 500 }, (_req, res) => {
      hit('expensive');
      res.end('gold\n');
    }),
    'GET /notes': paywall.protect({ ...notes, requires: { capabilities: ['read'] } }, (_req, res) => {
      hit('read');
      res.end('notes: read\n');
    }),
    'POST /notes': paywall.protect({ ...notes, requires: { capabilities: ['write'] } }, (_req, res) => {
      hit('write');
      res.end('notes: written\n');
    }),
    'GET /teapot': paywall.protect(api, (_req, res) => {
      hit('teapot');
      res.statusCode = 418;
      res.end('short and stout\n');
    }),
  };
  const server = http
    .createServer((req, res) => {
      const listener = routes[`${req.method} ${req.url?.split('?')[0]}`];
      if (listener !== undefined) return listener(req, res);
      res.statusCode = 404;
      res.end('not here\n');
    })
    .listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    devnet,
    url,
    hits,
    bodies,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await paywall.close();
      await devnet.close();
      for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
    },
  };
}

/**
 * Builds the binary and starts the world before the file's tests, closes it after them: the
 * returned handle reads the running world, so use its fields inside tests and hooks only.
 *
 * @example
 * const world = useWorld();
 * it('pays', async () => expect((await l402(['get', `${world.url}/paid`], { home: clientHome(world.devnet) })).code).toBe(0));
 */
export function useWorld(options: Parameters<typeof startWorld>[0] = {}): World {
  let world: World | undefined;
  beforeAll(async () => {
    ensureBuilt();
    world = await startWorld(options);
  }, 180_000);
  afterAll(async () => {
    await world?.close();
  });
  const running = (): World => {
    if (world === undefined) throw new Error('the world runs only inside tests and hooks');
    return world;
  };
  return {
    get devnet() {
      return running().devnet;
    },
    get url() {
      return running().url;
    },
    get hits() {
      return running().hits;
    },
    get bodies() {
      return running().bodies;
    },
    close: () => running().close(),
  };
}

/** A loopback port nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const server = http.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
