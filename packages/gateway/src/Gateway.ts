/**
 * The gateway: Aperture's paid reverse proxy, started from a {@link Config.Config}.
 *
 * What `start` wires together, in order (and closes in reverse):
 * - the token store: SQLite at `sqlite.dbfile` (default `<basedir>/gateway.db`) or PostgreSQL;
 * - the Lightning backend: the in-process devnet (`backend: devnet`; joining the devnet already
 *   running on this home, as `l402 devnet` publishes it, else starting one and publishing its
 *   `devnet.json`), LND's REST API (`lndhost`, `tlspath`, `macdir`), or any wallet URI;
 * - the Authority, which makes every L402 decision (random root keys in the store, or keys derived
 *   from the master key in `secrets.masterkeypath`, made on first use);
 * - the limits (`limits.ts`): freebie counts in the database or Redis, rate-limit buckets in this
 *   process or Redis, and the Redis client when `redis` is configured;
 * - the proxies: HTTP (a connection pool per service), gRPC (an HTTP/2 session per service) and
 *   WebSocket upgrades (a connection per tunnel);
 * - the listener (HTTP/1.1 + h2 over TLS with a configured or self-signed certificate, or HTTP/1.1 +
 *   h2c with `insecure`), whose `Upgrade: websocket` requests go to the handler's upgrade hook;
 * - a job that removes unpaid tokens whose invoice has expired, every minute;
 * - a probe of the Lightning backend (`info()`) every 15 s, for the metrics and the log;
 * - with `prometheus.enabled`, the metrics (`metrics.ts`): `/metrics` on `prometheus.listenaddr`, or on
 *   the gateway's listener when that is not set; and the discovery manifest at
 *   `/.well-known/l402.json` (`discovery.ts`) unless `discovery.enabled` is false.
 *
 * `close()` is the graceful shutdown: it stops accepting, lets requests in flight finish for up to
 * `graceMs` (10 s by default), then closes the pools, the Authority, the store, the backend and a
 * devnet it started.
 *
 * @example
 * const { config, warnings } = Config.load('aperture.yaml');
 * const gateway = await Gateway.start(config, { log: Log.create({ level: config.debuglevel, write: (l) => process.stderr.write(l) }) });
 * gateway.url; // 'https://127.0.0.1:8081'
 * process.once('SIGTERM', () => void gateway.close());
 */
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Errors } from 'l402';
import { type Backend, connect, Lnd } from 'l402/lightning';
import type { Store } from 'l402/server';
import * as Authority from 'l402/server';
import * as Admin from './admin/Admin.js';
import * as Catalogue from './admin/services.js';
import type { Config, HostPort } from './Config.js';
import * as Discovery from './discovery.js';
import * as Grpc from './grpc.js';
import * as Handler from './handler.js';
import * as Health from './health.js';
import { ipList } from './internal/ip.js';
import { certificateAt, masterKeyAt, selfSignedAt } from './internal/secrets.js';
import * as Log from './Log.js';
import * as Limits from './limits.js';
import * as Listener from './listener.js';
import * as Metered from './metered.js';
import * as Metrics from './metrics.js';
import * as Mpp from './mpp.js';
import * as ReverseProxy from './proxy.js';
import * as Router from './router.js';
import * as Upgrade from './upgrade.js';

/** What {@link start} takes beside the config: where the devnet lives, logging, and test hooks. */
export interface StartOptions {
  /** Where the devnet publishes (or is found by) `devnet.json`; `config.basedir` by default. */
  readonly home?: string;
  /** JSON lines to stderr at `config.debuglevel` by default. */
  readonly log?: Log.Logger;
  /** Listen here instead of `config.listenaddr`; port 0 picks a free port. */
  readonly listen?: HostPort;
  /** Unix milliseconds; the Authority's clock and the expiry job's. */
  readonly now?: () => number;
  /** How often unpaid tokens whose invoice expired are removed (and MPP's sweep runs); 60 000 ms by default. */
  readonly sweepIntervalMs?: number;
  /** How often the Lightning backend is probed (`info()`); 15 000 ms by default. */
  readonly probeIntervalMs?: number;
}

/** The devnet the gateway takes its invoices from. */
export interface DevnetInUse {
  readonly document: Devnet.Document;
  /** `devnet.json`, where the payer's wallet URIs are. */
  readonly file: string;
  /** Started by this gateway (and stopped with it), rather than joined. */
  readonly started: boolean;
}

/** A running gateway. */
export interface Gateway {
  /** `http://…` or `https://…` with the port actually bound. */
  readonly url: string;
  readonly address: HostPort;
  /** What the port speaks: `HTTP/1.1, h2c` or `HTTP/1.1, h2 (TLS)`. */
  readonly protocols: string;
  /** The store, for people: `sqlite /path/gateway.db` or `postgres host:port/db`. */
  readonly store: string;
  /** The Lightning backend, for people: `devnet (in this process)`, `lnd https://…`, or a URI's wallet kind. */
  readonly lightning: string;
  readonly devnet: DevnetInUse | undefined;
  /** Where Prometheus scrapes, `http://…/metrics`; undefined unless `prometheus.enabled`. */
  readonly metrics: string | undefined;
  /** The discovery manifest's URL, `…/.well-known/l402.json`; undefined with `discovery.enabled: false`. */
  readonly discovery: string | undefined;
  /**
   * The admin API when `admin.enabled`: its macaroon file, and the one-time link that opens the
   * dashboard signed in (when `dashboard.enabled`; usable once, for 15 minutes).
   */
  readonly admin: { readonly macaroonPath: string; readonly dashboardUrl: string | undefined } | undefined;
  /**
   * Revokes a token by its id: refused here at once, and by every other instance on the same store
   * within the Authority's revocation poll (500 ms). False when the token is unknown.
   */
  revoke(tokenId: Uint8Array): Promise<boolean>;
  /** Graceful shutdown; resolves when everything is closed. Calling it again waits for the first call. */
  close(options?: { readonly graceMs?: number }): Promise<void>;
}

const DEFAULT_GRACE_MS = 10_000;
const DEFAULT_SWEEP_MS = 60_000;
const DEFAULT_PROBE_MS = 15_000;
const PROBE_TIMEOUT_MS = 5_000;

/** Something to undo at shutdown, last opened first closed. */
type Closer = () => Promise<void> | void;

/**
 * Starts the gateway; rejects (having closed whatever it opened) when something cannot start:
 * `Errors.StartError` (listen address, TLS files, master key, a backend CA), the store's
 * `StoreError`, or the backend's `BackendError`.
 *
 * @example
 * const gateway = await Gateway.start(Config.defaults(home, { upstream }), { home, listen: { host: '127.0.0.1', port: 0 } });
 * await gateway.close();
 */
export async function start(config: Config, options: StartOptions = {}): Promise<Gateway> {
  const log =
    options.log ??
    Log.create({
      level: config.debuglevel,
      write: (line) => process.stderr.write(line),
      pretty: process.stderr.isTTY === true,
    });
  const now = options.now ?? Date.now;
  const closers: Closer[] = [];
  const unwind = async () => {
    for (const closer of closers.reverse()) {
      try {
        await closer();
      } catch (error) {
        log.warn('shutdown step failed', { error });
      }
    }
  };
  try {
    const keys: Authority.Keys =
      config.secrets.mode === 'derived'
        ? { mode: 'derived', masterKey: masterKeyAt(config.secrets.masterkeypath) }
        : { mode: 'random' };

    const { store, description: storeText } = await openStore(config);
    closers.push(() => store.close());

    const wallet = await openWallet(config, options.home ?? config.basedir, log);
    closers.push(() => wallet.close());

    const authority =
      wallet.backend === undefined
        ? undefined
        : await Authority.create({
            backend: wallet.backend,
            store,
            keys,
            now,
            onError: (error, context) =>
              log.warn('authority', {
                context,
                code: (error as { code?: unknown }).code,
                error: error instanceof Error ? error.message : String(error),
              }),
          });
    if (authority !== undefined) closers.push(() => authority.close());
    const payments =
      authority === undefined || wallet.backend === undefined
        ? undefined
        : await Mpp.create({
            config,
            store,
            backend: wallet.backend,
            authority,
            now,
            log,
            sweepIntervalMs: options.sweepIntervalMs,
          });
    if (payments !== undefined) closers.push(() => payments.close());

    const limits = await Limits.open(config, { log, now });
    closers.push(() => limits.close());
    log.info('limits', { where: limits.description });

    const sweeper = sweep(store, now, options.sweepIntervalMs ?? DEFAULT_SWEEP_MS, log);
    closers.push(() => sweeper.stop());

    const metrics = config.prometheus.enabled ? Metrics.create() : undefined;
    const health =
      wallet.backend === undefined
        ? undefined
        : Health.watch(wallet.backend, {
            intervalMs: options.probeIntervalMs ?? DEFAULT_PROBE_MS,
            timeoutMs: PROBE_TIMEOUT_MS,
            metrics: metrics ?? Metrics.none,
            log,
          });
    if (health !== undefined) closers.push(() => health.stop());
    const endpoints = new Map<string, Handler.Endpoint>();
    if (config.discovery.enabled) {
      const discovery = Discovery.create(config, () => ({
        pubkey: health?.info?.pubkey,
        network: health?.info?.network,
      }));
      endpoints.set(Discovery.PATH, (request) =>
        discovery.answer(request.method ?? 'GET', request.headers['if-none-match']),
      );
    }
    let metricsServer: Metrics.Server | undefined;
    if (metrics !== undefined && config.prometheus.listenaddr !== undefined) {
      metricsServer = await Metrics.serve(metrics, config.prometheus.listenaddr);
      const server = metricsServer;
      closers.push(() => server.close());
    } else if (metrics !== undefined) {
      endpoints.set('/metrics', (request) => Metrics.answer(metrics, request.method ?? 'GET'));
    }
    // Prices that are not the plain static one (pricers, prepaid credit), by service.
    const pricing = await Metered.create(config.services, { store, log });
    closers.push(() => pricing.close());
    // With the admin API, services can change while running (and persist in the store's database).
    const catalogue = config.admin.enabled
      ? await Catalogue.open(config, {
          routes: pricing.routes,
          onError: (error) =>
            log.warn('admin services', { error: error instanceof Error ? error.message : String(error) }),
        })
      : undefined;
    if (catalogue !== undefined) closers.push(() => catalogue.close());

    const proxyOptions: ReverseProxy.Options = {
      services: catalogue?.services() ?? config.services,
      limits: config.limits,
      writetimeout: config.writetimeout,
      trusted: ipList(config.trustedproxies),
      log,
      ...(metrics !== undefined ? { metrics } : {}),
    };
    const proxy = ReverseProxy.create(proxyOptions);
    closers.push(() => proxy.close());
    const grpc = Grpc.create(proxyOptions);
    closers.push(() => grpc.close());
    const upgrades = Upgrade.create(proxyOptions);

    const tls = config.insecure
      ? undefined
      : config.tlsselfsigned
        ? selfSignedAt(config.tlscertpath, config.tlskeypath, certificateHosts(config), now)
        : certificateAt(config.tlscertpath, config.tlskeypath);
    let bound: HostPort = options.listen ?? config.listenaddr;
    const admin =
      catalogue === undefined
        ? undefined
        : Admin.create({
            config,
            store,
            authority,
            catalogue,
            address: () => bound,
            encrypted: tls !== undefined,
            store_description: storeText,
            lightning: wallet.description,
            now,
          });
    const handler = Handler.create({
      router: catalogue?.router ?? Router.create(config.services, pricing.routes),
      meters: pricing.meters,
      view: pricing.view,
      authority,
      payments,
      proxy,
      grpc,
      upgrades,
      freebies: limits.freebies,
      ratelimits: limits.ratelimits,
      blocklist: ipList(config.blocklist),
      trusted: proxyOptions.trusted,
      maxbodybytes: config.limits.maxbodybytes,
      encrypted: tls !== undefined,
      log,
      ...(metrics !== undefined ? { metrics } : {}),
      endpoints,
      ...(admin !== undefined ? { local: admin.serve, observe: admin.observe } : {}),
    });
    const listener = await Listener.listen({
      address: options.listen ?? config.listenaddr,
      tls,
      limits: config.limits,
      timeouts: { read: config.readtimeout, idle: config.idletimeout },
      handler: handler.request,
      upgrade: handler.upgrade,
      log,
    });
    bound = listener.address;
    let graceMs = DEFAULT_GRACE_MS;
    closers.push(() => listener.close(graceMs));
    // Closed before the listener waits for requests in flight: live feeds never end on their own.
    if (admin !== undefined) closers.push(() => admin.close());

    const protocols = tls === undefined ? 'HTTP/1.1, h2c' : 'HTTP/1.1, h2 (TLS)';
    const metricsUrl = metrics === undefined ? undefined : `${metricsServer?.url ?? listener.url}/metrics`;
    log.info('listening', {
      url: listener.url,
      protocols,
      store: storeText,
      lightning: wallet.description,
      ...(metricsUrl !== undefined ? { metrics: metricsUrl } : {}),
    });
    let closing: Promise<void> | undefined;
    return {
      url: listener.url,
      address: listener.address,
      protocols,
      store: storeText,
      lightning: wallet.description,
      devnet: wallet.devnet,
      metrics: metricsUrl,
      discovery: config.discovery.enabled ? `${listener.url}${Discovery.PATH}` : undefined,
      admin:
        admin === undefined
          ? undefined
          : {
              macaroonPath: admin.macaroonPath,
              dashboardUrl:
                admin.dashboardPath === undefined ? undefined : `${listener.url}${admin.dashboardPath}`,
            },
      async revoke(tokenId) {
        if (authority !== undefined) return authority.revoke({ tokenId });
        return store.revoke({ tokenId });
      },
      close(closeOptions = {}) {
        graceMs = closeOptions.graceMs ?? DEFAULT_GRACE_MS;
        closing ??= unwind().then(() => log.info('stopped'));
        return closing;
      },
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/** Names on a self-signed certificate: loopback, plus `servername` and a specific listen host. */
function certificateHosts(config: Config): string[] {
  const hosts = ['localhost', '127.0.0.1', '::1'];
  if (config.servername !== undefined) hosts.push(config.servername);
  const listenHost = config.listenaddr.host;
  if (listenHost !== '' && listenHost !== '0.0.0.0' && listenHost !== '::') hosts.push(listenHost);
  return hosts;
}

async function openStore(config: Config): Promise<{ store: Store; description: string }> {
  if (config.dbbackend === 'postgres') {
    const Postgres = await import('l402/stores/postgres');
    const pg = config.postgres;
    const store = await Postgres.open({
      host: pg.host,
      port: pg.port,
      ...(pg.user !== undefined ? { user: pg.user } : {}),
      ...(pg.password !== undefined ? { password: pg.password } : {}),
      ...(pg.dbname !== undefined ? { dbname: pg.dbname } : {}),
      requireSSL: pg.requiressl,
      maxconnections: pg.maxconnections,
    });
    return { store, description: `postgres ${pg.host}:${pg.port}/${pg.dbname ?? ''}` };
  }
  const Sqlite = await import('l402/stores/sqlite');
  const store = await Sqlite.open({ path: config.sqlite.dbfile });
  return { store, description: `sqlite ${config.sqlite.dbfile}` };
}

interface Wallet {
  readonly backend: Backend | undefined;
  readonly description: string;
  readonly devnet: DevnetInUse | undefined;
  close(): Promise<void>;
}

/** The Lightning backend `authenticator` names (none when `disable` is set). */
async function openWallet(config: Config, home: string, log: Log.Logger): Promise<Wallet> {
  const wallet = config.authenticator.wallet;
  if (wallet === undefined) {
    return { backend: undefined, description: 'disabled', devnet: undefined, close: async () => {} };
  }
  if (wallet.backend === 'devnet') return openDevnet(home, log);
  const backend =
    'uri' in wallet
      ? await connect(wallet.uri)
      : await Lnd.connect({
          url: wallet.url,
          macaroon: { path: wallet.macaroonpath },
          cert: { path: wallet.tlspath },
        });
  return {
    backend,
    description: 'uri' in wallet ? wallet.backend : `lnd ${wallet.url}`,
    devnet: undefined,
    close: () => backend.close(),
  };
}

/**
 * The devnet's merchant node. A devnet already running on this home (`l402 devnet`, or a gateway
 * started earlier that is still alive) is joined rather than shadowed by a second one that would
 * overwrite its `devnet.json`; otherwise one is started in this process and stopped with it.
 */
async function openDevnet(home: string, log: Log.Logger): Promise<Wallet> {
  const running = Devnet.find(home);
  const started = running === undefined ? await Devnet.start({ home }) : undefined;
  const document = running ?? started!.document;
  const merchant = document.nodes.merchant;
  if (merchant === undefined) {
    await started?.close();
    throw new Errors.BackendError(
      'L402_BACKEND_CONFIG',
      'devnet',
      `the devnet running on ${home} (process ${document.pid}) has no merchant node for the gateway`,
    );
  }
  try {
    const backend = await connect(merchant.uris.lnd);
    log.info(started ? 'devnet started' : 'devnet joined', {
      nodes: Object.keys(document.nodes),
      pid: document.pid,
    });
    return {
      backend,
      description: started ? 'devnet (in this process)' : `devnet (process ${document.pid})`,
      devnet: { document, file: started?.file ?? join(home, 'devnet.json'), started: started !== undefined },
      close: async () => {
        await backend.close();
        await started?.close();
      },
    };
  } catch (error) {
    await started?.close();
    throw error;
  }
}

/** Removes expired unpaid tokens now and every `intervalMs`, one pass at a time. */
function sweep(
  store: Store,
  now: () => number,
  intervalMs: number,
  log: Log.Logger,
): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const pass = () => {
    running ??= store
      .removeExpiredUnpaid(Math.floor(now() / 1000))
      .then((removed) => {
        if (removed > 0) log.info('removed unpaid tokens whose invoice expired', { count: removed });
      })
      .catch((error: unknown) => log.warn('removing expired unpaid tokens failed', { error }))
      .finally(() => {
        running = undefined;
      });
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
