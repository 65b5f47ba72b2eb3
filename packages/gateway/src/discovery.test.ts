import { describe, expect, it } from 'vitest';
import * as Config from './Config.js';
import * as Discovery from './discovery.js';

const yaml = (extra = '') => `
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: /tmp/l402-discovery-test
servername: api.example.com
authenticator:
  backend: devnet
  network: regtest
${extra}
services:
  - name: weather
    pathregexp: '^/v1/forecast/.*$'
    address: "127.0.0.1:9001"
    price: 21
    timeout: 3600
    capabilities: forecast,historical
    constraints:
      forecast_monthly_requests: "1000"
      region: eu
  - name: open
    pathregexp: '^/free/'
    address: "127.0.0.1:9001"
    auth: off
  - name: sample
    hostregexp: '^sample\\.example\\.com$'
    address: "127.0.0.1:9001"
    auth: freebie 3
    price: 2
`;

describe('the config keys', () => {
  it('reads discovery (on by default) and leaves prometheus.listenaddr undefined when absent', () => {
    const plain = Config.parse(yaml('prometheus:\n  enabled: true'), 'test.yaml', { env: {} }).config;
    expect(plain.discovery).toEqual({ enabled: true, name: undefined, uri: undefined });
    expect(plain.prometheus).toEqual({ enabled: true, listenaddr: undefined });
    const set = Config.parse(
      yaml(
        'prometheus:\n  enabled: true\n  listenaddr: ":9000"\ndiscovery:\n  enabled: false\n  name: Acme\n  uri: https://acme.example',
      ),
      'test.yaml',
      { env: {} },
    ).config;
    expect(set.discovery).toEqual({ enabled: false, name: 'Acme', uri: 'https://acme.example' });
    expect(set.prometheus).toEqual({ enabled: true, listenaddr: { host: '', port: 9000 } });
    expect(() => Config.parse(yaml('discovery:\n  enabled: maybe'), 'test.yaml', { env: {} })).toThrow(
      /test\.yaml:\d+: discovery\.enabled: /,
    );
  });
});

describe('Discovery.manifest', () => {
  it('describes every paid service with its price in msat, capabilities, caveats and schemes', () => {
    const { config } = Config.parse(yaml(), 'test.yaml', { env: {} });
    const manifest = Discovery.manifest(config, { pubkey: `02${'ab'.repeat(32)}` });
    expect(manifest).toEqual({
      version: '1.0',
      provider: { name: 'api.example.com', node_pubkey: `02${'ab'.repeat(32)}` },
      currencies: ['msat'],
      macaroon_versions: [0],
      payment_methods: ['bolt11'],
      network: 'regtest',
      services: [
        {
          name: 'weather',
          capabilities: ['forecast', 'historical'],
          resources: [
            {
              path: '/v1/forecast/',
              path_regexp: '^/v1/forecast/.*$',
              pricing: { model: 'fixed', price_msat: 21_000 },
            },
          ],
          schemes: ['l402'],
          minted_caveats: {
            services: 'weather:0',
            weather_capabilities: 'forecast,historical',
            forecast_monthly_requests: '1000',
            region: 'eu',
          },
          token_lifetime_seconds: 3600,
        },
        {
          name: 'sample',
          resources: [
            { host_regexp: '^sample\\.example\\.com$', pricing: { model: 'fixed', price_msat: 2000 } },
          ],
          schemes: ['l402'],
          minted_caveats: { services: 'sample:0' },
          free_requests: 3,
        },
      ],
      caveats: {
        services: {
          type: 'service_list',
          attenuation: 'subset',
          description: 'service names with their tier, name:tier',
        },
        weather_capabilities: { type: 'string', attenuation: 'subset' },
        weather_valid_until: { type: 'timestamp', attenuation: 'earlier' },
        forecast_monthly_requests: { type: 'integer', attenuation: 'decreasing' },
        region: { type: 'string' },
      },
    });
  });

  it('offers MPP where authscheme says so, marks dynamic prices, and takes the provider from discovery', () => {
    const text = yaml(`  enablempp: true
  enablesessions: true
  mpprealm: api.example.com
discovery:
  name: Acme Weather
  uri: https://api.example.com`)
      .replace('    price: 21\n', '    price: 21\n    authscheme: l402+mpp\n')
      .replace(
        '    price: 2\n',
        '    price: 2\n    authscheme: mpp\n    dynamicprice:\n      enabled: true\n      grpcaddress: "127.0.0.1:9999"\n      insecure: true\n',
      );
    const { config } = Config.parse(text, 'test.yaml', { env: {} });
    const manifest = Discovery.manifest(config);
    expect(manifest.provider).toEqual({ name: 'Acme Weather', uri: 'https://api.example.com' });
    expect(manifest.services.map((s) => [s.name, s.schemes, s.resources[0]!.pricing])).toEqual([
      ['weather', ['l402', 'mpp'], { model: 'fixed', price_msat: 21_000 }],
      ['sample', ['mpp'], { model: 'dynamic' }],
    ]);
    expect(manifest.mpp).toEqual({
      realm: 'api.example.com',
      method: 'lightning',
      intents: ['charge', 'session'],
    });
  });

  it('serves JSON with CORS and an ETag, 304 for a match, 405 for other methods', () => {
    const { config } = Config.parse(yaml(), 'test.yaml', { env: {} });
    let pubkey: string | undefined;
    const discovery = Discovery.create(config, () => ({ pubkey }));
    const first = discovery.answer('GET');
    expect(first.status).toBe(200);
    const headers = Object.fromEntries(first.headers);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['access-control-allow-origin']).toBe('*');
    expect(JSON.parse(first.body)).toEqual(Discovery.manifest(config));
    expect(discovery.answer('GET', headers.etag).status).toBe(304);
    expect(discovery.answer('HEAD', `"other", ${headers.etag}`).status).toBe(304);
    expect(discovery.answer('GET', '"other"').status).toBe(200);
    // The node's key, once known, is in the document, which is then another version.
    pubkey = `03${'cd'.repeat(32)}`;
    const second = discovery.answer('GET', headers.etag);
    expect(second.status).toBe(200);
    expect(JSON.parse(second.body).provider.node_pubkey).toBe(pubkey);
    expect(discovery.answer('POST').status).toBe(405);
  });
});
