/**
 * The real gateway, from packages/gateway/dist: one paid service (`/paid/…`, 1 sat) in front of the
 * benchmark upstream, its invoices from the devnet merchant's LND API, its tokens in SQLite (WAL,
 * fsync per challenge) under a temporary basedir. It logs as it ships (JSON lines at `info`, one per
 * request, to stderr, which the bench sends to a file). `BENCH_GATEWAY_PROMETHEUS=1` turns the
 * Prometheus metrics on (recorded on every request, served at the gateway's own `/metrics`).
 */
import { join } from 'node:path';
import { Config, Gateway } from '@l402/gateway';
import { serve, settings } from './child.js';

// `services`: more service entries (YAML), for benches that compare services on one gateway.
const { upstream, wallet, home, services = '' } = await settings();
const yaml = `
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: ${JSON.stringify(join(home, 'gateway'))}
dbbackend: sqlite
authenticator:
  uri: ${JSON.stringify(wallet)}
services:
  - name: bench
    pathregexp: '^/paid/'
    address: "${upstream}"
    protocol: http
    price: 1
${services}${process.env.BENCH_GATEWAY_PROMETHEUS === '1' ? 'prometheus:\n  enabled: true\n' : ''}`;
const { config } = Config.parse(yaml, 'bench.yaml', { env: {} });
const gateway = await Gateway.start(config, { home, listen: { host: '127.0.0.1', port: 0 } });
serve({ port: gateway.address.port }, () => gateway.close({ graceMs: 1_000 }));
