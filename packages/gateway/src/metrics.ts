/**
 * Prometheus metrics of the gateway (prom-client, text exposition format), served at `/metrics` when
 * `prometheus.enabled` is set: on `prometheus.listenaddr` when configured (a plain-HTTP listener of
 * its own that serves nothing else, as Aperture's exporter), else on the gateway's own listener.
 *
 * | metric | type | labels | counts |
 * |---|---|---|---|
 * | `l402_challenges_total` | counter | `service` | 402 challenges issued (an invoice and a macaroon minted) |
 * | `l402_tokens_accepted_total` | counter | `service` | requests let in on a paid token |
 * | `l402_rejections_total` | counter | `service`, `reason`, `code` | answers refusing a request: the Authority's reason (`invalid-credential` for a bad credential answered with a fresh challenge, `unauthorized`, `unavailable`, `price-error`, …) with the error's stable code; the gateway's own refusals (`service=""`: `blocked`, `bad-request`, `no-service`, `body-too-large`) |
 * | `l402_upstream_errors_total` | counter | `service`, `code` | backends unreachable, too slow or failing mid-response (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, …) |
 * | `l402_request_duration_seconds` | histogram | `service`, `outcome` | whole exchanges, streamed bodies included; `outcome` is `open`, `paid`, `freebie`, or the Authority's reason |
 * | `l402_lightning_up` | gauge | `backend` | 1 when the last probe of the Lightning backend (`info()`) answered, else 0 |
 * | `l402_lightning_probe_duration_seconds` | gauge | `backend` | how long that probe took |
 *
 * plus prom-client's default process metrics (`process_cpu_seconds_total`, `nodejs_eventloop_lag_seconds`, …).
 *
 * The request path pays a map lookup or two and an increment per metric it moves: the series live in
 * plain numbers (label values are service names, reasons and error codes: bounded sets), which
 * prom-client's registry formats at scrape time.
 *
 * @example
 * const metrics = Metrics.create();
 * metrics.decided('api', decision);
 * const { contentType, body } = await metrics.scrape();
 */
import { once } from 'node:events';
import * as http from 'node:http';
import { type Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { formatHostPort, type HostPort } from './Config.js';
import { StartError } from './Errors.js';
import type { Reply } from './proxy.js';

/** What the gateway reports; {@link none} when metrics are off. */
export interface Recorder {
  /** The Authority answered a request itself (a challenge, a 401, a 503 …). */
  decided(
    service: string,
    decision: { readonly reason: string; readonly error?: { readonly code: string } },
  ): void;
  /** A request was let in on a paid token. */
  accepted(service: string): void;
  /** A backend could not be reached or failed, with the error's code. */
  upstreamError(service: string, code: string): void;
  /**
   * A request is over. Without `outcome` it was answered by the gateway itself before reaching a
   * service: its status says why (a refusal, counted as a rejection).
   */
  completed(
    outcome: { readonly service: string; readonly outcome: string } | undefined,
    status: number | undefined,
    seconds: number,
  ): void;
  /** The Lightning backend's probe answered (`up`) or not, in `seconds`. */
  probed(backend: string, up: boolean, seconds: number): void;
}

/** A recorder with a registry to scrape. */
export interface Metrics extends Recorder {
  readonly registry: Registry;
  /** The exposition, for `GET /metrics`. */
  scrape(): Promise<{ readonly contentType: string; readonly body: string }>;
}

/**
 * Records nothing: what the gateway uses when `prometheus.enabled` is off.
 *
 * @example
 * Handler.create({ ...options, metrics: Metrics.none });
 */
export const none: Recorder = {
  decided() {},
  accepted() {},
  upstreamError() {},
  completed() {},
  probed() {},
};

/** The gateway's own refusals, before any service is chosen, by status. */
const REFUSALS: Readonly<Record<number, string>> = {
  400: 'bad-request',
  403: 'blocked',
  404: 'no-service',
  413: 'body-too-large',
};

/** Seconds: from a cached-token pass (sub-millisecond) to a slow backend or a long stream. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** One sample as prom-client's registry formats it. */
interface Value {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly metricName?: string;
}

/**
 * A family of series of one metric, found by label values through nested maps (no key is built per
 * call), each series made once. It stands in for prom-client's `Counter` and `Histogram`, whose
 * `inc`/`observe` check and hash the label set on every call (≈ 1 µs each): here a request moves plain
 * numbers, and prom-client's registry only formats them at scrape time (`get`).
 */
class Family<Series> {
  private readonly root = new Map<string, unknown>();
  readonly all: { readonly labels: Record<string, string>; readonly series: Series }[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
    private readonly make: () => Series,
  ) {}

  /** The series with these label values (in `labelNames` order). */
  of(...values: string[]): Series {
    let node = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i]!, next);
      }
      node = next;
    }
    let series = node.get(values[last]!) as Series | undefined;
    if (series === undefined) {
      series = this.make();
      node.set(values[last]!, series);
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => {
        labels[name] = values[i]!;
      });
      this.all.push({ labels, series });
    }
    return series;
  }
}

interface Count {
  value: number;
}

interface Observations {
  /** Per bucket (not cumulative), the last one for values above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

function counter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
): Family<Count> {
  const family = new Family<Count>(name, help, 'counter', labelNames, () => ({ value: 0 }));
  register(registry, family, () => family.all.map(({ labels, series }) => ({ labels, value: series.value })));
  return family;
}

function histogram(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
): Family<Observations> {
  const family = new Family<Observations>(name, help, 'histogram', labelNames, () => ({
    counts: new Float64Array(BUCKETS.length + 1),
    sum: 0,
    count: 0,
  }));
  register(registry, family, () => {
    const values: Value[] = [];
    for (const { labels, series } of family.all) {
      let cumulative = 0;
      BUCKETS.forEach((bound, i) => {
        cumulative += series.counts[i]!;
        values.push({
          labels: { le: String(bound), ...labels },
          value: cumulative,
          metricName: `${name}_bucket`,
        });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: series.count, metricName: `${name}_bucket` });
      values.push({ labels, value: series.sum, metricName: `${name}_sum` });
      values.push({ labels, value: series.count, metricName: `${name}_count` });
    }
    return values;
  });
  return family;
}

/** Puts a family in the registry, which asks it for its values (`get`) at each scrape. */
function register(registry: Registry, family: Family<unknown>, values: () => Value[]): void {
  const metric = {
    name: family.name,
    help: family.help,
    type: family.type,
    aggregator: 'sum',
    get: async () => ({
      name: family.name,
      help: family.help,
      type: family.type,
      aggregator: 'sum',
      values: values(),
    }),
  };
  // The registry takes anything with a name and `get()`; its type only names its own classes.
  registry.registerMetric(metric as unknown as Counter);
}

function observe(series: Observations, seconds: number): void {
  let i = 0;
  while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
  series.counts[i]! += 1;
  series.sum += seconds;
  series.count += 1;
}

/**
 * A registry with the gateway's metrics and prom-client's default process metrics.
 *
 * @example
 * const metrics = Metrics.create();
 * metrics.accepted('api');
 * (await metrics.scrape()).body; // '… l402_tokens_accepted_total{service="api"} 1 …'
 */
export function create(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const challenges = counter(
    registry,
    'l402_challenges_total',
    '402 challenges issued (invoice and macaroon minted), by service',
    ['service'],
  );
  const accepted = counter(
    registry,
    'l402_tokens_accepted_total',
    'Requests let in on a paid L402 token, by service',
    ['service'],
  );
  const rejections = counter(
    registry,
    'l402_rejections_total',
    'Requests refused, by service, reason and error code (service="" for the gateway\'s own refusals)',
    ['service', 'reason', 'code'],
  );
  const upstreamErrors = counter(
    registry,
    'l402_upstream_errors_total',
    'Backends unreachable, too slow, or failing mid-response, by service and error code',
    ['service', 'code'],
  );
  const duration = histogram(
    registry,
    'l402_request_duration_seconds',
    'Whole exchanges (streamed bodies included), by service and outcome',
    ['service', 'outcome'],
  );
  const up = new Gauge({
    name: 'l402_lightning_up',
    help: '1 when the last probe of the Lightning backend answered, else 0',
    labelNames: ['backend'],
    registers: [registry],
  });
  const probe = new Gauge({
    name: 'l402_lightning_probe_duration_seconds',
    help: 'Duration of the last probe of the Lightning backend',
    labelNames: ['backend'],
    registers: [registry],
  });

  return {
    registry,
    decided(service, decision) {
      const code = decision.error?.code ?? '';
      if (decision.reason !== 'challenge') rejections.of(service, decision.reason, code).value++;
      else {
        challenges.of(service).value++;
        // A credential was presented and refused; Aperture's answer to it is a fresh challenge.
        if (decision.error !== undefined) rejections.of(service, 'invalid-credential', code).value++;
      }
    },
    accepted(service) {
      accepted.of(service).value++;
    },
    upstreamError(service, code) {
      upstreamErrors.of(service, code).value++;
    },
    completed(outcome, status, seconds) {
      if (outcome !== undefined) {
        observe(duration.of(outcome.service, outcome.outcome), seconds);
        return;
      }
      const refusal = status === undefined ? undefined : REFUSALS[status];
      if (refusal !== undefined) rejections.of('', refusal, '').value++;
      const why = refusal ?? (status !== undefined && status >= 500 ? 'error' : 'gateway');
      observe(duration.of('', why), seconds);
    },
    probed(backend, isUp, seconds) {
      up.labels(backend).set(isUp ? 1 : 0);
      probe.labels(backend).set(seconds);
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/**
 * The answer to a request for `/metrics`: the exposition to `GET` (headers alone to `HEAD`), 405 to
 * any other method.
 *
 * @example
 * const { status, headers, body } = await Metrics.answer(metrics, 'GET'); // 200, text/plain; version=0.0.4
 */
export async function answer(metrics: Metrics, method: string): Promise<Reply> {
  if (method !== 'GET' && method !== 'HEAD') {
    return {
      status: 405,
      headers: [
        ['allow', 'GET, HEAD'],
        ['content-type', 'text/plain; charset=utf-8'],
      ],
      body: 'method not allowed\n',
    };
  }
  try {
    const { contentType, body } = await metrics.scrape();
    return {
      status: 200,
      headers: [
        ['content-type', contentType],
        ['cache-control', 'no-store'],
      ],
      // Node leaves the body out of an answer to HEAD, keeping its length.
      body,
    };
  } catch (error) {
    return {
      status: 500,
      headers: [['content-type', 'text/plain; charset=utf-8']],
      body: `metrics unavailable: ${error instanceof Error ? error.message : String(error)}\n`,
    };
  }
}

/** The metrics listener (see {@link serve}). */
export interface Server {
  readonly address: HostPort;
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` alone on `address`, over plain HTTP, as Aperture's exporter does; every other path
 * is 404. Rejects with `StartError` (`L402_GATEWAY_LISTEN`) when the address cannot be bound.
 *
 * @example
 * const server = await Metrics.serve(metrics, { host: '127.0.0.1', port: 9000 });
 * server.url; // 'http://127.0.0.1:9000' → GET /metrics
 */
export async function serve(metrics: Metrics, address: HostPort): Promise<Server> {
  const server = http.createServer(
    { headersTimeout: 10_000, requestTimeout: 10_000 },
    (request, response) => {
      const path = (request.url ?? '').split('?')[0];
      const replied: Promise<Reply> =
        path === '/metrics'
          ? answer(metrics, request.method ?? 'GET')
          : Promise.resolve({
              status: 404,
              headers: [['content-type', 'text/plain; charset=utf-8']],
              body: '404 page not found\n',
            });
      void replied.then(({ status, headers, body }) => {
        response.writeHead(status, {
          ...Object.fromEntries(headers),
          'content-length': String(Buffer.byteLength(body)),
        });
        response.end(body);
      });
    },
  );
  server.keepAliveTimeout = 5_000;
  try {
    server.listen(address.port, address.host || undefined);
    await once(server, 'listening');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StartError(
      'L402_GATEWAY_LISTEN',
      `cannot listen on ${formatHostPort(address)} for prometheus (${code ?? error}): check prometheus.listenaddr`,
      { cause: error },
    );
  }
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
  const host =
    address.host === '' || address.host === '0.0.0.0' || address.host === '::' ? '127.0.0.1' : address.host;
  return {
    address: { host: address.host, port },
    url: `http://${formatHostPort({ host, port })}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
