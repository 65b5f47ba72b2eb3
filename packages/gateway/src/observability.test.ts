import * as http from 'node:http';
import { Credential, Macaroon } from 'l402';
import { beforeAll, describe, expect, it } from 'vitest';
import * as Config from './Config.js';
import type * as Gateway from './Gateway.js';
import * as Log from './Log.js';
import * as Testing from './testing.js';

// ——— a backend that records the request ids it was sent ———

const seenIds: (string | undefined)[] = [];
const backend = http.createServer((request, response) => {
  seenIds.push(request.headers['x-request-id'] as string | undefined);
  request.resume();
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ ok: true }));
});

const send = (url: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET') =>
  Testing.send(url, { headers, method });

// ——— the Prometheus text format, read as a scraper reads it ———

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** Scrapes `url`; `value(name, labels)` is the sample with exactly those labels, 0 when absent. */
async function scrape(url: string) {
  const reply = await send(url);
  expect(reply.status).toBe(200);
  expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples = parseExposition(reply.body);
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = samples.find(
      (s) =>
        s.name === name &&
        Object.keys(s.labels).length === Object.keys(labels).length &&
        Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    return found?.value ?? 0;
  };
  return { samples, value, names: new Set(samples.map((s) => s.name)) };
}

/** Waits until `check` holds, asking every 50 ms for up to `ms`. */
async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the condition did not hold in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ——— the network and the gateways under test ———

const world = Testing.useWorld({ name: 'l402-observe-', backend });

function yaml(extra = '', wallet = world.merchant): string {
  return world.config(
    `
  - name: api
    pathregexp: '^/api/'
    address: "${world.upstream}"
    price: 21
    timeout: 3600
    capabilities: read,write
    constraints:
      max_items: "10"
  - name: free
    pathregexp: '^/free/'
    address: "${world.upstream}"
    auth: off
  - name: down
    pathregexp: '^/down/'
    address: "127.0.0.1:${world.closedPort}"
    auth: off
`,
    { extra, wallet },
  );
}

async function start(text: string, options: Gateway.StartOptions = {}) {
  const lines: string[] = [];
  const { config } = Config.parse(text, 'test.yaml', { env: {} });
  const log = Log.create({ level: 'debug', write: (line) => lines.push(line) });
  const gateway = await world.start(text, { log, ...options });
  return { gateway, config, lines };
}

async function buy(url: string) {
  const unpaid = await send(url);
  expect(unpaid.status).toBe(402);
  return world.pay(Testing.headerValues(unpaid.lines, 'www-authenticate'));
}

describe('a gateway with metrics on its own listener, logging at debug', () => {
  let gateway: Gateway.Gateway;
  let config: Config.Config;
  let lines: string[];
  let token: Awaited<ReturnType<typeof buy>>;
  let forged: string;

  beforeAll(async () => {
    ({ gateway, config, lines } = await start(yaml('prometheus:\n  enabled: true')));
  });

  it('counts the 402, the paid request, the forged token, the upstream failure and the 404, with their labels', async () => {
    expect(gateway.metrics).toBe(`${gateway.url}/metrics`);
    const before = await scrape(gateway.metrics!);
    // Only the Lightning probe's series and the process metrics exist yet; counters start at 0.
    expect(before.value('l402_challenges_total', { service: 'api' })).toBe(0);

    token = await buy(`${gateway.url}/api/items`);
    expect((await send(`${gateway.url}/api/items`, { authorization: token.authorization })).status).toBe(200);
    // A forged token: the bought macaroon with its expiry caveat dropped, the signature left as it was.
    const widened = { ...token.macaroon, caveats: token.macaroon.caveats.slice(0, 3) };
    forged = Credential.format({ macaroon: widened, preimage: token.preimage });
    const refused = await send(`${gateway.url}/api/items`, { authorization: forged });
    expect(refused.status).toBe(402);
    expect((await send(`${gateway.url}/down/x`)).status).toBe(502);
    expect((await send(`${gateway.url}/nowhere`)).status).toBe(404);
    expect((await send(`${gateway.url}/free/x`)).status).toBe(200);

    const after = await scrape(gateway.metrics!);
    // The unpaid request and the forged one each got a fresh challenge.
    expect(after.value('l402_challenges_total', { service: 'api' })).toBe(2);
    expect(after.value('l402_tokens_accepted_total', { service: 'api' })).toBe(1);
    expect(
      after.value('l402_rejections_total', {
        service: 'api',
        reason: 'invalid-credential',
        code: 'L402_BAD_SIGNATURE',
      }),
    ).toBe(1);
    expect(after.value('l402_rejections_total', { service: '', reason: 'no-service', code: '' })).toBe(1);
    expect(after.value('l402_upstream_errors_total', { service: 'down', code: 'ECONNREFUSED' })).toBe(1);
    // Latency histograms per service and outcome: every request is in its +Inf bucket and its count.
    const count = (service: string, outcome: string) =>
      after.value('l402_request_duration_seconds_count', { service, outcome });
    expect(count('api', 'challenge')).toBe(2);
    expect(count('api', 'paid')).toBe(1);
    expect(count('down', 'open')).toBe(1);
    expect(count('free', 'open')).toBe(1);
    expect(count('', 'no-service')).toBe(1);
    expect(
      after.value('l402_request_duration_seconds_bucket', { le: '+Inf', service: 'api', outcome: 'paid' }),
    ).toBe(1);
    expect(
      after.value('l402_request_duration_seconds_sum', { service: 'api', outcome: 'paid' }),
    ).toBeGreaterThan(0);
    // Buckets are cumulative.
    const buckets = after.samples.filter(
      (s) =>
        s.name === 'l402_request_duration_seconds_bucket' &&
        s.labels.service === 'api' &&
        s.labels.outcome === 'challenge',
    );
    expect(buckets.length).toBeGreaterThan(5);
    expect(buckets.map((b) => b.value)).toEqual([...buckets.map((b) => b.value)].sort((a, b) => a - b));
    // The process metrics prom-client collects by default.
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
    ])
      expect(after.names.has(name), name).toBe(true);
  }, 30_000);

  it('reports the Lightning backend up once its probe answered', async () => {
    await until(
      async () => (await scrape(gateway.metrics!)).value('l402_lightning_up', { backend: 'lnd' }) === 1,
    );
    const { value } = await scrape(gateway.metrics!);
    expect(value('l402_lightning_probe_duration_seconds', { backend: 'lnd' })).toBeGreaterThan(0);
  });

  it('writes one JSON line per request with its id, echoing a well-formed X-Request-Id and forwarding it', async () => {
    const mine = await send(`${gateway.url}/free/traced`, { 'x-request-id': 'trace-0123:abc' });
    expect(mine.headers['x-request-id']).toBe('trace-0123:abc');
    expect(seenIds.at(-1)).toBe('trace-0123:abc');

    const malformed = await send(`${gateway.url}/free/traced`, { 'x-request-id': 'two words' });
    const fresh = malformed.headers['x-request-id'] as string;
    expect(fresh).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(seenIds.at(-1)).toBe(fresh);
    const none = await send(`${gateway.url}/api/unpaid`);
    expect(none.status).toBe(402);
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(none.headers['x-request-id']).not.toBe(fresh);

    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const requests = entries.filter((e) => e.msg === 'request');
    expect(requests.length).toBeGreaterThanOrEqual(9);
    for (const entry of requests) {
      expect(entry).toMatchObject({ level: 'info', method: 'GET' });
      expect(typeof entry.requestId).toBe('string');
      expect(Date.parse(entry.time as string)).not.toBeNaN();
    }
    expect(requests.find((e) => e.requestId === 'trace-0123:abc')).toMatchObject({
      path: '/free/traced',
      status: 200,
      service: 'free',
      outcome: 'open',
      client: '127.0.0.1',
    });
    expect(requests.find((e) => e.requestId === fresh)).toMatchObject({ status: 200 });
    expect(requests.find((e) => e.requestId === none.headers['x-request-id'])).toMatchObject({
      path: '/api/unpaid',
      status: 402,
      service: 'api',
      outcome: 'challenge',
    });
    // The failed upstream is a warning with the service and the error code.
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'upstream failed',
        service: 'down',
        code: 'ECONNREFUSED',
      }),
    );
  });

  it('never writes a preimage, a macaroon or an Authorization value', async () => {
    // Every form a credential can come in, the query string included.
    await send(`${gateway.url}/api/items?macaroon=${token.offer.macaroon}`, {
      macaroon: Credential.formatMacaroonHeader({ macaroon: token.macaroon, preimage: token.preimage }),
    });
    await send(`${gateway.url}/free/x?token=${Buffer.from(token.preimage).toString('hex')}`, {
      authorization: token.authorization,
    });
    const text = lines.join('');
    expect(text.length).toBeGreaterThan(0);
    const preimageHex = Buffer.from(token.preimage).toString('hex');
    const secrets = [
      preimageHex,
      token.offer.macaroon,
      Macaroon.toBase64(token.macaroon),
      Macaroon.toHex(token.macaroon),
      token.authorization,
      token.authorization.slice('L402 '.length, 'L402 '.length + 40),
      forged.slice('L402 '.length, 'L402 '.length + 40),
    ];
    for (const secret of secrets) expect(text.includes(secret), secret.slice(0, 16)).toBe(false);
    // The macaroon in URL-safe base64 or hex pieces would still be found by its first bytes.
    expect(text).not.toMatch(/AgEE|0201[0-9a-f]{2}6c/);
  });

  it('serves the discovery manifest matching the config, with the node key once the probe answered', async () => {
    const pubkey = world.devnet.document.nodes.merchant!.nodeId;
    await until(async () => {
      const reply = await send(`${gateway.url}/.well-known/l402.json`);
      return JSON.parse(reply.body).provider.node_pubkey !== undefined;
    });
    const reply = await send(`${gateway.url}/.well-known/l402.json`);
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('application/json');
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    const manifest = JSON.parse(reply.body);
    expect(manifest).toMatchObject({
      version: '1.0',
      provider: { name: 'l402 gateway', node_pubkey: pubkey },
      currencies: ['msat'],
      payment_methods: ['bolt11'],
    });
    // The paid service alone, at its configured price, with its capabilities, caveats and scheme.
    expect(manifest.services).toEqual([
      {
        name: 'api',
        capabilities: ['read', 'write'],
        resources: [
          { path: '/api/', path_regexp: '^/api/', pricing: { model: 'fixed', price_msat: 21_000 } },
        ],
        schemes: ['l402'],
        minted_caveats: { services: 'api:0', api_capabilities: 'read,write', max_items: '10' },
        token_lifetime_seconds: 3600,
      },
    ]);
    expect(manifest.services[0].resources[0].pricing.price_msat).toBe(config.services[0]!.price * 1000);
    // What the manifest says is what a token is minted with.
    expect(Macaroon.firstPartyCaveats(token.macaroon).slice(0, 3)).toEqual(
      Object.entries(manifest.services[0].minted_caveats).map(([k, v]) => `${k}=${v}`),
    );
    expect(Object.keys(manifest.caveats).sort()).toEqual(
      ['api_capabilities', 'api_valid_until', 'max_items', 'services'].sort(),
    );
    const again = await send(`${gateway.url}/.well-known/l402.json`, {
      'if-none-match': reply.headers.etag!,
    });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });
});

describe('metrics on a listener of their own', () => {
  it('serves /metrics on prometheus.listenaddr alone, and nothing on the gateway listener', async () => {
    const port = await Testing.deadPort();
    const { gateway } = await start(
      yaml(`prometheus:\n  enabled: true\n  listenaddr: "127.0.0.1:${port}"\ndiscovery:\n  enabled: false`),
    );
    expect(gateway.metrics).toBe(`http://127.0.0.1:${port}/metrics`);
    expect(gateway.discovery).toBeUndefined();
    expect((await send(`${gateway.url}/api/x`)).status).toBe(402);
    const { value } = await scrape(gateway.metrics!);
    expect(value('l402_challenges_total', { service: 'api' })).toBe(1);
    expect((await send(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    expect((await send(gateway.metrics!, {}, 'POST')).status).toBe(405);
    // Not on the gateway's own port, where /metrics and the manifest are ordinary (unrouted) paths.
    expect((await send(`${gateway.url}/metrics`)).status).toBe(404);
    expect((await send(`${gateway.url}/.well-known/l402.json`)).status).toBe(404);
  });

  it('serves no metrics at all when prometheus is not enabled', async () => {
    const { gateway } = await start(yaml());
    expect(gateway.metrics).toBeUndefined();
    expect((await send(`${gateway.url}/metrics`)).status).toBe(404);
  });
});

describe('a gateway whose Lightning backend does not answer', () => {
  it('reports the backend down and counts the 503s as rejections with the backend error code', async () => {
    const merchant = world.devnet.document.nodes.merchant!.uris.lnd;
    const unreachable = merchant.replace(/^lnd:\/\/127\.0\.0\.1:\d+/, `lnd://127.0.0.1:${world.closedPort}`);
    const { gateway, lines } = await start(yaml('prometheus:\n  enabled: true', unreachable), {
      probeIntervalMs: 100,
    });
    await until(async () => {
      const { samples } = await scrape(gateway.metrics!);
      return samples.some((s) => s.name === 'l402_lightning_up');
    });
    expect((await scrape(gateway.metrics!)).value('l402_lightning_up', { backend: 'lnd' })).toBe(0);
    const reply = await send(`${gateway.url}/api/x`);
    expect(reply.status).toBe(503);
    expect(reply.headers['retry-after']).toBeDefined();
    const { value } = await scrape(gateway.metrics!);
    expect(
      value('l402_rejections_total', {
        service: 'api',
        reason: 'unavailable',
        code: 'L402_BACKEND_UNREACHABLE',
      }),
    ).toBe(1);
    expect(value('l402_challenges_total', { service: 'api' })).toBe(0);
    // Said once, not at every probe.
    const warnings = lines.filter((l) => l.includes('lightning backend does not answer'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).not.toContain(merchant.split('macaroon=')[1]!.slice(0, 20));
  });
});
