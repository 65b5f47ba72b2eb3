import { describe, expect, it } from 'vitest';
import * as Config from './Config.js';
import * as Router from './router.js';

const { config } = Config.parse(
  `
authenticator: { backend: devnet }
services:
  - name: lnd
    hostregexp: '^lnd\\.example\\.com$'
    address: "127.0.0.1:1"
    price: 3
  - name: api
    pathregexp: '^/api/'
    address: "127.0.0.1:2"
    price: 21
    timeout: 60
    capabilities: read, write
    constraints: { max_items: "10" }
    authwhitelistpaths: ['^/api/health$']
    authskipinvoicecreationpaths: ['^/api/stream/']
  - name: tips
    pathregexp: '^/tips'
    address: "127.0.0.1:3"
    auth: freebie 3
  - name: docs
    address: "127.0.0.1:4"
    auth: off
`,
  'router.yaml',
  { env: {} },
);
const router = Router.create(config.services);

describe('Router', () => {
  it('tries services in order, by host then path; a service without pathregexp takes every path', () => {
    expect(router.match({ host: 'lnd.example.com', path: '/api/x' })?.service.name).toBe('lnd');
    expect(router.match({ host: 'lnd.example.com:443', path: '/api/x' })?.service.name).toBe('api');
    expect(router.match({ host: 'other', path: '/tips/1' })?.service.name).toBe('tips');
    expect(router.match({ host: 'other', path: '/anything' })?.service.name).toBe('docs');
  });

  it('maps the service onto an Authority route, with skipInvoice on skip-invoice paths', () => {
    const paid = router.match({ host: 'h', path: '/api/items' })!;
    expect(paid.access).toBe('paid');
    expect(paid.route).toEqual({
      service: 'api',
      price: 21,
      capabilities: ['read', 'write'],
      constraints: { max_items: '10' },
      timeout: 60,
    });
    const stream = router.match({ host: 'h', path: '/api/stream/1' })!;
    expect(stream.route).toEqual({ ...paid.route, skipInvoice: true });
  });

  it('opens auth-off services and whitelisted paths, and marks freebie services', () => {
    expect(router.match({ host: 'h', path: '/api/health' })?.access).toBe('open');
    expect(router.match({ host: 'h', path: '/api/health/x' })?.access).toBe('paid');
    expect(router.match({ host: 'h', path: '/x' })?.access).toBe('open');
    expect(router.match({ host: 'h', path: '/tips' })?.access).toBe('freebie');
  });

  it('matches nothing when no service fits', () => {
    const only = Router.create(config.services.slice(0, 2));
    expect(only.match({ host: 'h', path: '/elsewhere' })).toBeUndefined();
  });
});
