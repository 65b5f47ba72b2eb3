/**
 * The devnet as other programs see it: a {@link Network} whose every node answers the wallet APIs of
 * real Lightning software (LND REST, Core Lightning's clnrest, phoenixd, LNbits and NWC over a loopback
 * Nostr relay), described in one JSON document that is also written to `$L402_HOME/devnet.json`, so any
 * l402 command on the machine finds the devnet wallet without flags.
 *
 * The default topology is what a paid API needs: a `merchant` (the gateway's node) and a `payer` (the
 * client's wallet) with one channel the payer funded, so the payer can pay at once.
 *
 * @example
 * const devnet = await Devnet.start({ home: '/tmp/l402' });
 * devnet.document.nodes.payer.uris.lnd; // "lnd://127.0.0.1:41234?macaroon=…&cert=/tmp/l402/devnet/payer/tls.cert"
 * await devnet.close();
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ArgumentError } from './Errors.js';
import * as Cln from './facades/cln.js';
import * as Lnbits from './facades/lnbits.js';
import * as Lnd from './facades/lnd.js';
import * as Nwc from './facades/nwc.js';
import * as Phoenixd from './facades/phoenixd.js';
import * as Relay from './facades/relay.js';
import * as Network from './Network.js';

export interface Options {
  /** Node names; defaults to `['merchant', 'payer']`. With more, each extra node gets a channel to the first. */
  readonly nodes?: readonly string[];
  /** Capacity of each channel, funded by the node that is not the first. Defaults to 10 000 000 sat. */
  readonly capacitySat?: number;
  /** Pushed to the first node at opening, so it can pay back. Defaults to 0. */
  readonly pushSat?: number;
  readonly transport?: Network.Transport;
  /** Where `devnet.json` and each node's `tls.cert` go; defaults to `$L402_HOME` or `~/.l402`. */
  readonly home?: string;
  /** Write `devnet.json` (default true). */
  readonly publish?: boolean;
  /** Interface the APIs listen on; defaults to 127.0.0.1. */
  readonly host?: string;
}

/** One node's APIs with their credentials, and a connection URI for each of l402's backends. */
export interface NodeApis {
  readonly nodeId: string;
  readonly lnd: {
    readonly url: string;
    readonly certPath: string;
    readonly macaroon: string;
    readonly invoiceMacaroon: string;
    readonly readonlyMacaroon: string;
  };
  readonly cln: { readonly url: string; readonly rune: string };
  readonly phoenixd: { readonly url: string; readonly password: string; readonly limitedPassword: string };
  readonly lnbits: { readonly url: string; readonly adminKey: string; readonly invoiceKey: string };
  readonly nwc: { readonly uri: string };
  /** For `Lightning.connect(uri)` and every `--wallet` flag. */
  readonly uris: {
    readonly lnd: string;
    readonly cln: string;
    readonly phoenixd: string;
    readonly lnbits: string;
    readonly nwc: string;
  };
}

/** The `devnet.json` document. */
export interface Document {
  readonly version: 1;
  readonly network: 'regtest';
  /** Process that runs the devnet; the document is stale once it is gone. */
  readonly pid: number;
  readonly startedAt: string;
  readonly relay: string;
  readonly nodes: Readonly<Record<string, NodeApis>>;
}

export interface Devnet {
  readonly network: Network.Network;
  readonly document: Document;
  /** Where the document was written, if it was. */
  readonly file: string | undefined;
  /** Stops every API and node, and removes `devnet.json` if this devnet wrote it. */
  close(): Promise<void>;
}

/** `$L402_HOME`, else `~/.l402`. */
export function home(): string {
  return process.env.L402_HOME ?? join(homedir(), '.l402');
}

/** The document a running devnet published under `home`, or `undefined` when none is running there. */
export function find(dir: string = home()): Document | undefined {
  let doc: Document;
  try {
    doc = JSON.parse(readFileSync(join(dir, 'devnet.json'), 'utf8')) as Document;
  } catch {
    return undefined;
  }
  try {
    process.kill(doc.pid, 0); // signal 0: is the process alive?
    return doc;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? doc : undefined;
  }
}

/** Starts the network and every API on loopback; resolves once all of them answer. */
export async function start(options: Options = {}): Promise<Devnet> {
  const names = options.nodes ?? ['merchant', 'payer'];
  if (names.length < 1) throw new ArgumentError('a devnet needs at least one node');
  const capacitySat = options.capacitySat ?? 10_000_000;
  const [first, ...rest] = names as [string, ...string[]];
  const network = await Network.start({
    nodes: names,
    channels: rest.map((name) => ({ from: name, to: first, capacitySat, pushSat: options.pushSat ?? 0 })),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
  });
  const closers: (() => Promise<void>)[] = [() => network.close()];
  let closing: Promise<void> | undefined;
  // Last started, first stopped; closing twice waits for the first close.
  const close = () => {
    closing ??= (async () => {
      for (const c of [...closers].reverse()) await c().catch(() => {});
    })();
    return closing;
  };
  try {
    const dir = options.home ?? home();
    const host = options.host ?? '127.0.0.1';
    const relay = await Relay.start({ host });
    closers.push(() => relay.close());
    const nodes: Record<string, NodeApis> = {};
    for (const name of names) {
      const node = network.node(name);
      const lnd = await Lnd.serve(node, { host });
      closers.push(() => lnd.close());
      const cln = await Cln.serve(node, { host });
      closers.push(() => cln.close());
      const phoenixd = await Phoenixd.serve(node, { host });
      closers.push(() => phoenixd.close());
      const lnbits = await Lnbits.serve(node, { host });
      closers.push(() => lnbits.close());
      const nwc = await Nwc.serve(node, { relayUrl: relay.url });
      closers.push(() => nwc.close());

      const nodeDir = join(dir, 'devnet', name);
      mkdirSync(nodeDir, { recursive: true, mode: 0o700 });
      const certPath = join(nodeDir, 'tls.cert');
      writeFileSync(certPath, lnd.certPem, { mode: 0o600 });
      const hostPort = (url: string) => new URL(url).host;
      nodes[name] = {
        nodeId: node.info().nodeId,
        lnd: {
          url: lnd.url,
          certPath,
          macaroon: lnd.macaroonHex,
          invoiceMacaroon: lnd.invoiceMacaroonHex,
          readonlyMacaroon: lnd.readonlyMacaroonHex,
        },
        cln: { url: cln.url, rune: cln.rune },
        phoenixd: {
          url: phoenixd.url,
          password: phoenixd.password,
          limitedPassword: phoenixd.limitedPassword,
        },
        lnbits: { url: lnbits.url, adminKey: lnbits.adminKey, invoiceKey: lnbits.invoiceKey },
        nwc: { uri: nwc.uri },
        uris: {
          lnd: `lnd://${hostPort(lnd.url)}?macaroon=${lnd.macaroonHex}&cert=${encodeURIComponent(certPath)}`,
          cln: `cln+http://${hostPort(cln.url)}?rune=${encodeURIComponent(cln.rune)}`,
          phoenixd: `phoenixd://:${encodeURIComponent(phoenixd.password)}@${hostPort(phoenixd.url)}`,
          lnbits: `lnbits+http://${hostPort(lnbits.url)}?key=${encodeURIComponent(lnbits.adminKey)}`,
          nwc: nwc.uri,
        },
      };
    }
    const document: Document = {
      version: 1,
      network: 'regtest',
      pid: process.pid,
      startedAt: new Date().toISOString(),
      relay: relay.url,
      nodes,
    };
    let file: string | undefined;
    if (options.publish ?? true) {
      file = join(dir, 'devnet.json');
      // Atomic and private: the document holds admin credentials.
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, file);
      const written = file;
      closers.splice(1, 0, async () => {
        if (find(dir)?.pid === process.pid) rmSync(written, { force: true });
      });
    }
    return { network, document, file, close };
  } catch (e) {
    await close();
    throw e;
  }
}
