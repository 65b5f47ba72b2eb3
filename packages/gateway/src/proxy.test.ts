import { randomBytes } from 'node:crypto';
import { Credential, Macaroon } from 'l402';
import { describe, expect, it } from 'vitest';
import * as Config from './Config.js';
import { ipList } from './internal/ip.js';
import { downstreamHeaders, failure, grpcStatus, isGrpc, upstreamHeaders } from './proxy.js';

const { config } = Config.parse(
  `
authenticator: { backend: devnet }
services:
  - name: api
    address: "10.1.2.3:8443"
    headers:
      Authorization-Upstream: "static"
      X-Tenant: "acme"
`,
  'proxy.yaml',
  { env: {} },
);
const service = config.services[0]!;
const macaroon = Macaroon.create({ rootKey: randomBytes(32), identifier: randomBytes(66), location: 'lsat' });
const credential = { ...Credential.parse(Credential.format({ macaroon, preimage: randomBytes(32) }))! };

const raw = (...pairs: [string, string][]) => pairs.flat();

describe('upstreamHeaders', () => {
  const context = {
    peer: '203.0.113.9',
    encrypted: false,
    host: 'api.example.com',
    credential: undefined,
    service,
    trusted: ipList(['127.0.0.1']),
  };

  it('drops hop-by-hop headers, those Connection names, Proxy-*, Expect and the client Host', () => {
    const headers = upstreamHeaders({
      ...context,
      rawHeaders: raw(
        ['Host', 'api.example.com'],
        ['Connection', 'keep-alive, X-Hop'],
        ['connection', 'Upgrade'],
        ['X-Hop', 'private'],
        ['Upgrade', 'websocket'],
        ['Keep-Alive', 'timeout=5'],
        ['Proxy-Authorization', 'Basic eA=='],
        ['Proxy-Connection', 'keep-alive'],
        ['TE', 'gzip, trailers'],
        ['Trailer', 'X-Sum'],
        ['Transfer-Encoding', 'chunked'],
        ['Expect', '100-continue'],
        ['Accept', 'application/json'],
      ),
    });
    expect(headers).toEqual({
      accept: 'application/json',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'api.example.com',
      host: '10.1.2.3:8443',
      'authorization-upstream': 'static',
      'x-tenant': 'acme',
    });
  });

  it("keeps gRPC's te: trailers, joins cookies, keeps repeats, and skips HTTP/2 pseudo-headers", () => {
    const headers = upstreamHeaders({
      ...context,
      rawHeaders: raw(
        [':method', 'POST'],
        [':authority', 'api.example.com'],
        ['te', 'trailers'],
        ['cookie', 'a=1'],
        ['cookie', 'b=2'],
        ['x-list', '1'],
        ['x-list', '2'],
      ),
    });
    expect(headers.te).toBe('trailers');
    expect(headers.cookie).toBe('a=1; b=2');
    expect(headers['x-list']).toEqual(['1', '2']);
    expect(Object.keys(headers).some((n) => n.startsWith(':'))).toBe(false);
  });

  it("rewrites the credential to Aperture's LSAT + L402 pair and lets the service's headers overwrite", () => {
    const headers = upstreamHeaders({
      ...context,
      credential,
      rawHeaders: raw(['Authorization', 'Bearer x'], ['X-Tenant', 'evil'], ['Macaroon', 'abcd']),
    });
    expect(headers.authorization).toEqual([
      Credential.format(credential, { scheme: 'LSAT' }),
      Credential.format(credential, { scheme: 'L402' }),
    ]);
    expect(headers['x-tenant']).toBe('acme');
    expect(headers.macaroon).toBe('abcd');
  });

  it('asks the backend for the upgrade it relays, keeping Sec-WebSocket-* and nothing else hop-by-hop', () => {
    const headers = upstreamHeaders({
      ...context,
      upgrade: 'websocket',
      rawHeaders: raw(
        ['Connection', 'Upgrade, X-Hop'],
        ['Upgrade', 'websocket'],
        ['X-Hop', 'private'],
        ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
        ['Sec-WebSocket-Version', '13'],
        ['Sec-WebSocket-Protocol', 'chat'],
      ),
    });
    expect(headers.connection).toBe('upgrade');
    expect(headers.upgrade).toBe('websocket');
    expect(headers['x-hop']).toBeUndefined();
    expect(headers['sec-websocket-key']).toBe('dGhlIHNhbXBsZSBub25jZQ==');
    expect(headers['sec-websocket-version']).toBe('13');
    expect(headers['sec-websocket-protocol']).toBe('chat');
  });

  it('replaces X-Forwarded-* from untrusted peers and extends them from trusted ones', () => {
    const rawHeaders = raw(
      ['X-Forwarded-For', '198.51.100.1'],
      ['X-Forwarded-For', '198.51.100.2'],
      ['X-Forwarded-Proto', 'https'],
      ['X-Forwarded-Host', 'front.example'],
    );
    const untrusted = upstreamHeaders({ ...context, rawHeaders });
    expect(untrusted['x-forwarded-for']).toBe('203.0.113.9');
    expect(untrusted['x-forwarded-proto']).toBe('http');
    expect(untrusted['x-forwarded-host']).toBe('api.example.com');
    const trusted = upstreamHeaders({ ...context, peer: '::ffff:127.0.0.1', rawHeaders });
    expect(trusted['x-forwarded-for']).toBe('198.51.100.1, 198.51.100.2, 127.0.0.1');
    expect(trusted['x-forwarded-proto']).toBe('https');
    expect(trusted['x-forwarded-host']).toBe('front.example');
  });
});

describe('downstreamHeaders', () => {
  it("drops hop-by-hop response headers and merges Aperture's CORS headers", () => {
    const headers = downstreamHeaders({
      'content-type': 'text/event-stream',
      connection: 'keep-alive, x-hop',
      'x-hop': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-methods': 'PUT, get',
      'access-control-expose-headers': ['X-Total', 'X-Page'],
      'access-control-allow-headers': undefined,
    });
    expect(headers).toEqual({
      'content-type': 'text/event-stream',
      'set-cookie': ['a=1', 'b=2'],
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'PUT, get, POST, OPTIONS',
      'access-control-expose-headers': 'X-Total, X-Page, WWW-Authenticate, Payment-Receipt',
      'access-control-allow-headers':
        'Content-Type, Authorization, Grpc-Metadata-macaroon, WWW-Authenticate, Payment-Receipt',
    });
  });
});

describe("the gateway's own answers", () => {
  it('are plain text for HTTP clients and HTTP 200 with a mapped grpc-status for gRPC clients', () => {
    expect(failure(502, 'upstream unavailable', false)).toEqual({
      status: 502,
      headers: [
        ['content-type', 'text/plain; charset=utf-8'],
        ['x-content-type-options', 'nosniff'],
      ],
      body: 'upstream unavailable\n',
    });
    expect(failure(404, 'not found', true, { 'x-extra': '1' })).toEqual({
      status: 200,
      headers: [
        ['x-extra', '1'],
        ['content-type', 'application/grpc'],
        ['grpc-status', '12'],
        ['grpc-message', 'not found'],
      ],
      body: '',
    });
    expect([400, 403, 413, 500, 502, 503, 504, 418].map(grpcStatus)).toEqual([13, 7, 8, 13, 14, 14, 14, 2]);
  });

  it('take gRPC and grpc-web content types for gRPC clients', () => {
    expect(isGrpc({ 'content-type': 'application/grpc' })).toBe(true);
    expect(isGrpc({ 'content-type': 'application/grpc-web+proto' })).toBe(true);
    expect(isGrpc({ 'content-type': 'application/json' })).toBe(false);
    expect(isGrpc({})).toBe(false);
  });
});
