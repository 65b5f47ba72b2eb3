/**
 * `l402/client/node`: the client's Node extras. Tokens and the ledger in files under `$L402_HOME`
 * (default `~/.l402`; files 0600 in 0700 directories, every write atomic: temp file, fsync, rename; the
 * ledger's changes appended to a flushed journal between rewrites; a file read again only when its `stat`
 * changed), a lock across processes (an `O_EXCL` lock file holding the owner's pid; a lock whose process is gone is
 * taken over), wallets from URIs or the running devnet, and lnget's token files.
 *
 * @example
 * import { createFetch } from 'l402/client';
 * import { FileLedger, FileTokenStore, openWallet } from 'l402/client/node';
 * const fetch402 = createFetch({ wallet: await openWallet('devnet'), store: FileTokenStore.open(), ledger: FileLedger.open() });
 */
import { randomBytes } from 'node:crypto';
import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { type FileHandle, link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { ClientError } from '../Errors.js';
import * as Identifier from '../Identifier.js';
import { toHex } from '../internal/bytes.js';
import { connect } from '../lightning/connect.js';
import * as Macaroon from '../Macaroon.js';
import * as Ledger from './Ledger.js';
import { type Journal, Mutex, type Space } from './Space.js';
import * as TokenStore from './TokenStore.js';
import * as Wallet from './Wallet.js';

/** `$L402_HOME`, else `~/.l402`. */
export function defaultHome(): string {
  return process.env.L402_HOME ?? join(homedir(), '.l402');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** File names for keys: anything outside `[A-Za-z0-9._-]` becomes `%XX`, so two keys never share a file. */
const fileName = (key: string) =>
  encodeURIComponent(key)
    .replace(/[!'()*~%]/g, (c) => (c === '%' ? '%' : `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .replace(/%/g, '=');
const keyOf = (name: string) => decodeURIComponent(name.replace(/=/g, '%'));

const mutexes = new Map<string, Mutex>();

/** Creates `path` with `text`, mode 0600, flushed to disk; throws EEXIST when it exists. */
function createDurably(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes the names in `dir` durable (a rename, a new or removed file). */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems cannot fsync a directory; the change is still atomic.
  } finally {
    await handle.close();
  }
}

/** Writes `text` to `file` atomically and durably, mode 0600. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${toHex(randomBytes(6))}.tmp`;
  createDurably(tmp, text);
  await rename(tmp, file);
  await syncDir(join(file, '..'));
}

/**
 * Appends `line` (ending in a newline) to `file` (created 0600) and flushes it: a line is acknowledged
 * only once it is whole on disk. A line left unfinished by a crash was never acknowledged; it is cut off
 * first, or the new line would join it. A line that fails to be written whole is taken back.
 */
async function appendDurably(file: string, line: string): Promise<void> {
  const bytes = Buffer.from(line);
  const fd = openSync(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT, 0o600);
  let size: number;
  try {
    size = fstatSync(fd).size;
    const last = Buffer.alloc(1);
    if (size > 0 && (readSync(fd, last, 0, 1, size - 1) !== 1 || last[0] !== 0x0a)) {
      const all = Buffer.alloc(size);
      const n = readSync(fd, all, 0, size, 0);
      size = all.subarray(0, n).lastIndexOf(0x0a) + 1;
      ftruncateSync(fd, size);
    }
    try {
      if (writeSync(fd, bytes) !== bytes.length) throw new Error('short write');
      fsyncSync(fd);
    } catch (error) {
      try {
        ftruncateSync(fd, size);
      } catch {
        // Unfinished, it is cut by the next append; whole but unflushed, it counts (never for less).
      }
      throw error;
    }
  } finally {
    closeSync(fd);
  }
  if (size === 0) await syncDir(join(file, '..')); // the file may be new: its name must last too
}

/**
 * Whether a file whose last change is stamped `ctimeNs`, found so no earlier than `beforeMs` (this host's
 * clock), will show any later change in its `stat`. Every change (a write, a truncate, a rename of a new
 * file onto its name, a `utimes`) stamps the change time from the same clock, but file systems stamp in
 * ticks (Linux: ≤ 10 ms; some file systems: 1 or 2 s, the ones whose stamps are whole seconds), so a
 * change within the tick of the last one may carry the same stamp, and a new file renamed into place may
 * even reuse the old one's inode number and size. A change after `beforeMs` is stamped later than
 * `ctimeNs` once `ctimeNs` is older than `beforeMs` by more than a tick: then the `stat` alone tells.
 * What this takes for granted: a local file system, and a clock never set back by more than the margin.
 */
function settled(ctimeNs: bigint, beforeMs: number): boolean {
  const margin = ctimeNs % 1_000_000_000n === 0n ? 3_000 : 100;
  return ctimeNs < BigInt(beforeMs - margin) * 1_000_000n;
}

/** What a file held when last read, frozen, with the `stat` it had then. */
interface Seen {
  readonly dev: bigint;
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtime: bigint;
  readonly ctime: bigint;
  readonly value: unknown;
  /** Whether an unchanged `stat` means unchanged content (see {@link settled}). */
  readonly trusted: boolean;
}

function freeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) freeze(v);
  }
  return value;
}

const storeError = (what: string, file: string, e: unknown) =>
  new ClientError('L402_CLIENT_STORE', `cannot ${what} ${file}: ${(e as Error).message}`, { cause: e });

/**
 * Reads files through `parse`, keeping each parsed value (frozen) until the file changes: a read is one
 * `stat`, compared with the one taken when the file was last read (device, inode, size, modification and
 * change times, to the nanosecond); the file is read again when any differs, or when it had changed too
 * recently for the `stat` to tell (see {@link settled}).
 */
function cachedReader(parse: (text: string, file: string) => unknown) {
  const cache = new Map<string, Seen>();
  const load = async (file: string): Promise<unknown> => {
    const before = Date.now();
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw storeError('read', file, e);
      cache.delete(file);
      return undefined;
    }
    try {
      // The stat of the very file read: a rename onto the name meanwhile cannot mix two files' stat and text.
      const info = await handle.stat({ bigint: true });
      const value = freeze(parse(await handle.readFile('utf8'), file));
      cache.set(file, {
        dev: info.dev,
        ino: info.ino,
        size: info.size,
        mtime: info.mtimeNs,
        ctime: info.ctimeNs,
        value,
        trusted: settled(info.ctimeNs, before),
      });
      return value;
    } catch (e) {
      throw e instanceof ClientError ? e : storeError('read', file, e);
    } finally {
      await handle.close();
    }
  };
  return async (file: string): Promise<unknown> => {
    const seen = cache.get(file);
    if (seen?.trusted) {
      let info: BigIntStats | undefined;
      try {
        // Synchronous: a stat takes microseconds, and the promise round trip would cost several times that.
        info = statSync(file, { bigint: true, throwIfNoEntry: false });
      } catch (e) {
        throw storeError('read', file, e);
      }
      if (info === undefined) {
        cache.delete(file);
        return undefined;
      }
      if (
        info.ino === seen.ino &&
        info.ctimeNs === seen.ctime &&
        info.size === seen.size &&
        info.mtimeNs === seen.mtime &&
        info.dev === seen.dev
      )
        return seen.value;
    }
    return load(file);
  };
}

const parseDocument = (text: string, file: string): unknown => {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ClientError('L402_CLIENT_STORE', `${file} is not JSON`, { cause: e });
  }
};

/** A journal's entries: one JSON value per line; a last line without its newline is not written yet. */
const parseJournal = (text: string, file: string): unknown[] => {
  const end = text.lastIndexOf('\n');
  if (end < 0) return [];
  return text
    .slice(0, end)
    .split('\n')
    .map((line, i) => {
      try {
        return JSON.parse(line);
      } catch (e) {
        throw new ClientError('L402_CLIENT_STORE', `${file} line ${i + 1} is not JSON`, { cause: e });
      }
    });
};

export interface LockOptions {
  /** How long to wait for a lock before failing (default 120 s: a payment may take a minute). */
  readonly timeoutMs?: number;
  /**
   * A lock held longer than this is stale whoever holds it (default 10 min: a reused pid, a lock from
   * another host on a shared file system).
   */
  readonly maxAgeMs?: number;
}

/** Whether a lock file's `pid host time` names a process that is gone (this host) or is too old. */
function stale(owner: string, maxAgeMs: number): boolean {
  const [pid, host, time] = owner.trim().split(' ');
  if (Number.isSafeInteger(Number(time)) && Date.now() - Number(time) > maxAgeMs) return true;
  const n = Number(pid);
  return host === hostname() && Number.isSafeInteger(n) && n > 0 && !alive(n);
}

/**
 * Runs `fn` holding the lock file `path`: created with `O_EXCL` and holding `pid host time`. A lock whose
 * owner process is gone (same host) is stale and taken over; the take-over renames the stale file away
 * first, so two waiters cannot both take it.
 *
 * @example
 * await withFileLock('/home/me/.l402/locks/x.lock', async () => { … });
 */
export async function withFileLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let me = '';
  let wait = 5;
  for (;;) {
    me = `${process.pid} ${hostname()} ${Date.now()}\n`;
    try {
      createDurably(path, me);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ClientError('L402_CLIENT_STORE', `cannot create lock ${path}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const owner = await readFile(path, 'utf8').catch(() => undefined);
    // A lock file still empty is being written by its creator; only a written one can be judged stale.
    if (owner?.endsWith('\n') && stale(owner, options.maxAgeMs ?? 600_000)) {
      const aside = `${path}.stale.${process.pid}.${toHex(randomBytes(4))}`;
      try {
        await rename(path, aside);
      } catch {
        continue; // another waiter took it over first
      }
      const moved = await readFile(aside, 'utf8').catch(() => '');
      // Between reading and renaming, the stale lock may have been replaced by someone's fresh one:
      // put that one back (link fails if yet another lock exists) rather than break it.
      if (moved !== owner) await link(aside, path).catch(() => {});
      await rm(aside, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new ClientError(
        'L402_CLIENT_STORE',
        `lock ${path} is held by ${owner?.trim() ?? 'another process'}; gave up waiting`,
      );
    }
    await sleep(wait);
    wait = Math.min(wait * 2, 100);
  }
  try {
    return await fn();
  } finally {
    // Only our own lock: one held past maxAgeMs may have been taken over meanwhile.
    if ((await readFile(path, 'utf8').catch(() => undefined)) === me) await rm(path, { force: true });
  }
}

/**
 * A {@link Space} in a directory: one JSON file per key (0600, atomic writes), locks as `O_EXCL` lock
 * files under `locks/` (held across processes; within this process a mutex queues callers first), and a
 * journal per key (`<key>.journal`: one JSON line per entry, each appended and flushed). A read costs one
 * `stat` while the file is as it was last read (see `cachedReader`), so another process's write is seen
 * by the very next read.
 *
 * @example
 * const store = TokenStore.over(fileSpace('/home/me/.l402/client'));
 */
export function fileSpace(dir: string, options: LockOptions = {}): Space {
  // One queue per directory in this process, however many stores are opened on it: callers here wait
  // in line instead of polling each other's lock files.
  const mutex = mutexes.get(resolve(dir)) ?? new Mutex();
  mutexes.set(resolve(dir), mutex);
  let made: Promise<void> | undefined;
  const ready = () => {
    made ??= (async () => {
      await mkdir(join(dir, 'locks'), { recursive: true, mode: 0o700 });
    })();
    return made;
  };
  const paths = new Map<string, string>();
  const path = (key: string, suffix = '.json') => {
    let p = paths.get(key + suffix);
    if (p === undefined) {
      p = join(dir, fileName(key) + suffix);
      paths.set(key + suffix, p);
    }
    return p;
  };
  const readDocument = cachedReader(parseDocument);
  const readJournal = cachedReader(parseJournal);
  const journal: Journal = {
    async entries(key) {
      return ((await readJournal(path(key, '.journal'))) as unknown[] | undefined) ?? [];
    },
    async append(key, entry) {
      await ready();
      const file = path(key, '.journal');
      try {
        await appendDurably(file, `${JSON.stringify(entry)}\n`);
      } catch (e) {
        throw storeError('append to', file, e);
      }
    },
    async clear(key) {
      await rm(path(key, '.journal'), { force: true });
      await syncDir(dir);
    },
  };
  return {
    read: (key) => readDocument(path(key)),
    async write(key, value) {
      await ready();
      if (value === undefined) await rm(path(key), { force: true });
      else await writeAtomic(path(key), `${JSON.stringify(value)}\n`);
    },
    async keys(prefix) {
      await ready();
      return (await readdir(dir))
        .filter((n) => n.endsWith('.json'))
        .map((n) => keyOf(n.slice(0, -5)))
        .filter((k) => k.startsWith(prefix));
    },
    lock: (name, fn) =>
      mutex.run(name, async () => {
        await ready();
        return withFileLock(join(dir, 'locks', `${fileName(name)}.lock`), fn, options);
      }),
    journal,
  };
}

/** Tokens in files under `$L402_HOME/client/` (one file per origin). */
export const FileTokenStore = {
  /**
   * @example
   * const store = FileTokenStore.open(); // $L402_HOME/client
   */
  open(home: string = defaultHome(), options: LockOptions = {}): TokenStore.TokenStore {
    return TokenStore.over(fileSpace(join(home, 'client'), options));
  },
  /**
   * Reads lnget's token directory (`~/.lnget/tokens/<domain>/l402.token` and `.pending`, Aperture's
   * binary token format) and returns the tokens as {@link TokenStore.StoredToken}s (paid ones with their
   * preimage; pending ones without). The origin is `https://<domain>` (lnget keys tokens by host).
   *
   * @example
   * const n = await store.import(await FileTokenStore.importLnget(join(homedir(), '.lnget', 'tokens')));
   */
  async importLnget(dir: string): Promise<TokenStore.StoredToken[]> {
    const out: TokenStore.StoredToken[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const sub = join(dir, entry.name);
      // lnget names the directory after the host with `:` made `_` (undone as lnget does: the first one);
      // some versions keep the original in `.domain`.
      const domain = (
        await readFile(join(sub, '.domain'), 'utf8').catch(() => entry.name.replace('_', ':'))
      ).trim();
      for (const name of ['l402.token', 'lsat.token', 'l402.token.pending', 'lsat.token.pending']) {
        const bytes = await readFile(join(sub, name)).catch(() => undefined);
        if (bytes === undefined) continue;
        const t = decodeApertureToken(new Uint8Array(bytes));
        const origin = new URL(/^https?:\/\//.test(domain) ? domain : `https://${domain}`).origin;
        const mac = Macaroon.decode(t.macaroon);
        const id = Identifier.decode(mac.identifier);
        const scope = TokenStore.scopeOf(Macaroon.firstPartyCaveats(mac));
        const zero = t.preimage.every((b) => b === 0);
        const info = await stat(join(sub, name));
        out.push({
          origin,
          path: scope.path ?? '/',
          scheme: 'L402',
          macaroon: Macaroon.toBase64(mac),
          paymentHash: toHex(t.paymentHash),
          tokenId: toHex(id.tokenId),
          invoice: '',
          amountSats: Number(t.amountPaidMsat / 1000n),
          feeSats: Number(t.routingFeeMsat / 1000n),
          state: zero || name.endsWith('.pending') ? 'pending' : 'paid',
          createdAt: t.timeCreated ?? info.mtimeMs,
          ...(zero ? {} : { preimage: toHex(t.preimage) }),
          ...(scope.expiresAt !== undefined ? { expiresAt: scope.expiresAt } : {}),
          ...(scope.services !== undefined ? { services: scope.services } : {}),
        });
      }
    }
    return out;
  },
};

/**
 * Aperture's binary token (`l402/token.go` serializeToken, what lnget stores): big-endian
 * `uint32 macaroon length | macaroon | payment hash [32] | preimage [32] | amount paid msat uint64 |
 * routing fee msat uint64 | time created unix nanoseconds int64 [| PoW nonce uint64 | PoW difficulty uint32]`.
 */
export function decodeApertureToken(bytes: Uint8Array): {
  macaroon: Uint8Array;
  paymentHash: Uint8Array;
  preimage: Uint8Array;
  amountPaidMsat: bigint;
  routingFeeMsat: bigint;
  timeCreated: number | undefined;
} {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) =>
    new ClientError('L402_CLIENT_STORE', `not an lnget/Aperture token file: ${why}`);
  if (bytes.length < 4) throw bad('too short');
  const macLen = view.getUint32(0);
  if (macLen === 0 || macLen > Macaroon.MAX_BYTES || 4 + macLen + 64 + 16 > bytes.length)
    throw bad('bad macaroon length');
  let o = 4;
  const macaroon = bytes.slice(o, o + macLen);
  o += macLen;
  const paymentHash = bytes.slice(o, o + 32);
  o += 32;
  const preimage = bytes.slice(o, o + 32);
  o += 32;
  const amountPaidMsat = view.getBigUint64(o);
  o += 8;
  const routingFeeMsat = view.getBigUint64(o);
  o += 8;
  const timeCreated = o + 8 <= bytes.length ? Number(view.getBigInt64(o) / 1_000_000n) : undefined;
  return { macaroon, paymentHash, preimage, amountPaidMsat, routingFeeMsat, timeCreated };
}

/**
 * The spending ledger in `$L402_HOME/client/ledger.json`, its latest changes in `ledger.journal` beside
 * it (one flushed line each, folded into `ledger.json` every 100).
 */
export const FileLedger = {
  /**
   * @example
   * const ledger = FileLedger.open(undefined, { perDaySats: 1000 });
   */
  open(home: string = defaultHome(), budget?: Ledger.Budget, options: LockOptions = {}): Ledger.Ledger {
    return Ledger.over(fileSpace(join(home, 'client'), options), budget);
  },
};

interface DevnetDocument {
  pid: number;
  network?: Wallet.Network;
  nodes: Record<string, { uris: Record<string, string> }>;
}

/**
 * The running devnet's wallet URI for `node` (default `payer`) and `kind` (default `lnd`), read from
 * `$L402_HOME/devnet.json`; `undefined` when no live devnet published one there.
 *
 * @example
 * const uri = devnetUri({ kind: 'nwc' });
 */
export async function devnetUri(
  options: { home?: string; node?: string; kind?: string } = {},
): Promise<string | undefined> {
  return (await devnetWallet(options))?.uri;
}

async function devnetWallet(
  options: { home?: string; node?: string; kind?: string } = {},
): Promise<{ uri: string; network: Wallet.Network } | undefined> {
  let doc: DevnetDocument;
  try {
    doc = JSON.parse(
      await readFile(join(options.home ?? defaultHome(), 'devnet.json'), 'utf8'),
    ) as DevnetDocument;
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(doc.pid) || !alive(doc.pid)) return undefined;
  const uri = doc.nodes?.[options.node ?? 'payer']?.uris?.[options.kind ?? 'lnd'];
  return uri === undefined ? undefined : { uri, network: doc.network ?? 'regtest' };
}

/**
 * A wallet from a URI (`lnd://`, `cln://`, `phoenixd://`, `lnbits://`, `nostr+walletconnect://`), from
 * `devnet` / `devnet:<node>[:<kind>]` (the running devnet's wallet, found through
 * `$L402_HOME/devnet.json`), or a fallback list of those.
 *
 * @example
 * const wallet = await openWallet(['lnd://…', 'devnet:payer:cln']);
 */
export async function openWallet(
  uri: string | readonly string[],
  options: { home?: string } = {},
): Promise<Wallet.Wallet> {
  const list = typeof uri === 'string' ? [uri] : uri;
  const wallets: Wallet.Wallet[] = [];
  try {
    for (const u of list) {
      if (u === 'devnet' || u.startsWith('devnet:')) {
        const [, node, kind] = u.split(':');
        const found = await devnetWallet({
          ...options,
          ...(node ? { node } : {}),
          ...(kind ? { kind } : {}),
        });
        if (found === undefined)
          throw new ClientError(
            'L402_CLIENT_CONFIG',
            `no running devnet (with node ${node ?? 'payer'}) in ${join(options.home ?? defaultHome(), 'devnet.json')}; start one with \`l402 devnet\``,
          );
        // The devnet says its network; a backend that cannot tell (LNbits) must not guess mainnet.
        wallets.push(Wallet.onNetwork(await connect(found.uri), found.network));
      } else wallets.push(await connect(u));
    }
  } catch (error) {
    for (const w of wallets) await w.close?.();
    throw error;
  }
  return Wallet.fallback(wallets);
}
