/**
 * `l402 mcp` end to end with the official MCP SDK client, over stdio and over streamable HTTP, against
 * a gateway and a middleware server paid on the devnet: tools listed with their JSON schemas, a paid
 * call, the token reused, a budget refusal, approvals (out of band, and by elicitation), a delegated
 * token that works for its narrowed scope and fails outside it, and the operator's admin tools.
 * The server under test is the built binary (`packages/cli/bin/l402.js`), as an MCP host runs it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Devnet } from '@l402/devnet';
import { Config, Gateway, Log } from '@l402/gateway';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import * as NodeL402 from 'l402/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { policyOf } from '../packages/cli/src/mcp.js';

const bin = fileURLToPath(new URL('../packages/cli/bin/l402.js', import.meta.url));
const home = mkdtempSync(join(tmpdir(), 'l402-mcp-'));
const closers: (() => Promise<void>)[] = [];
let devnet: Devnet.Devnet;
let gateway: Gateway.Gateway;
let middlewareUrl: string;

const env = (extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '',
  HOME: home,
  L402_HOME: home,
  ...extra,
});

async function serve(listener: http.RequestListener): Promise<string> {
  const server = http.createServer(listener).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  devnet = await Devnet.start({ home: join(home, 'devnet'), publish: false });
  writeFileSync(join(home, 'devnet.json'), JSON.stringify(devnet.document), { mode: 0o600 });
  const upstream = await serve((req, res) => res.end(`upstream ${req.url}`));
  const { config } = Config.parse(
    `
listenaddr: "127.0.0.1:8080"
insecure: true
basedir: ${JSON.stringify(join(home, 'gw'))}
authenticator:
  uri: ${JSON.stringify(devnet.document.nodes.merchant!.uris.lnd)}
admin:
  enabled: true
services:
  - name: api
    pathregexp: '^/api/'
    address: "${upstream.slice('http://'.length)}"
    price: 21
    timeout: 3600
  - name: pricey
    pathregexp: '^/pricey/'
    address: "${upstream.slice('http://'.length)}"
    price: 40
`,
    'mcp.yaml',
    { env: {} },
  );
  gateway = await Gateway.start(config, { log: Log.silent, listen: { host: '127.0.0.1', port: 0 } });
  closers.push(() => gateway.close({ graceMs: 200 }));

  // A middleware app whose routes demand capabilities: tokens carry read and write, a delegate only read.
  const paywall = NodeL402.l402({
    backend: devnet.document.nodes.merchant!.uris.lnd,
    masterKey: 'ab'.repeat(32),
  });
  closers.push(() => paywall.close());
  const minted = { service: 'docs', price: 5, capabilities: ['read', 'write'] };
  const read = paywall.protect({ ...minted, requires: { capabilities: ['read'] } }, (_req, res) =>
    res.end('read ok'),
  );
  const write = paywall.protect({ ...minted, requires: { capabilities: ['write'] } }, (_req, res) =>
    res.end('write ok'),
  );
  middlewareUrl = await serve((req, res) =>
    req.url?.startsWith('/write') ? write(req, res) : read(req, res),
  );

  // The operator's limits for the buyer: at most 60 sat in total.
  writeFileSync(join(home, 'config.yaml'), 'budget:\n  totalSats: 60\n');
}, 120_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown> };
const call = async (client: Client, name: string, args: Record<string, unknown> = {}) =>
  (await client.callTool({ name, arguments: args })) as ToolResult;

async function stdioClient(args: string[], extraEnv: Record<string, string> = {}) {
  const client = new Client({ name: 'test-host', version: '1.0.0' });
  await client.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [bin, 'mcp', ...args],
      env: env(extraEnv),
      stderr: 'pipe',
    }),
  );
  closers.push(() => client.close());
  return client;
}

const BUYER_TOOLS = [
  'budget_status',
  'decode_invoice',
  'decode_token',
  'delegate_token',
  'fetch',
  'node_info',
  'payments',
  'quote',
  'tokens',
  'wallet_balance',
];

describe('l402 mcp (stdio)', () => {
  let client: Client;
  beforeAll(async () => {
    client = await stdioClient(['--allow-private', '--approval-threshold', '30']);
  }, 60_000);

  it('lists every buyer tool with its JSON schema and hints', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(BUYER_TOOLS);
    const fetchTool = tools.find((t) => t.name === 'fetch')!;
    expect(fetchTool.inputSchema.type).toBe('object');
    expect(fetchTool.inputSchema.required).toEqual(['url']);
    expect(Object.keys(fetchTool.inputSchema.properties ?? {})).toEqual(
      expect.arrayContaining(['url', 'method', 'headers', 'body', 'max_sats']),
    );
    expect(fetchTool.annotations?.readOnlyHint).toBe(false);
    expect(tools.find((t) => t.name === 'quote')!.annotations?.readOnlyHint).toBe(true);
  });

  it('quotes, pays once, then reuses the token without paying again', async () => {
    const url = `${gateway.url}/api/forecast`;
    const quote = await call(client, 'quote', { url });
    expect(quote.structuredContent).toMatchObject({
      status: 402,
      price: { sats: 21, needs_approval: false },
    });
    const first = await call(client, 'fetch', { url });
    expect(first.isError).toBeFalsy();
    expect(first.structuredContent).toMatchObject({
      status: 200,
      body: 'upstream /api/forecast',
      paid: { amount_sats: 21 },
    });
    const second = await call(client, 'fetch', { url: `${gateway.url}/api/other` });
    expect(second.structuredContent).toMatchObject({
      status: 200,
      paid: { amount_sats: 0, reused_token: true },
    });
    const payments = await call(client, 'payments');
    expect(payments.structuredContent).toMatchObject({ count: 1 });
    const tokens = (await call(client, 'tokens', { origin: gateway.url })).structuredContent as {
      tokens: { caveats: string[]; state: string }[];
    };
    expect(tokens.tokens).toHaveLength(1);
    expect(tokens.tokens[0]!.caveats[0]).toBe('services=api:0');
    expect(JSON.stringify(tokens)).not.toMatch(/preimage/);
    const budget = await call(client, 'budget_status');
    expect(budget.structuredContent).toMatchObject({ spent: { total: 21 }, remaining: { total: 39 } });
  });

  it('refuses a call over the budget without paying, and a max_sats below the price', async () => {
    const pricey = await call(client, 'fetch', { url: `${gateway.url}/pricey/x` });
    expect(pricey.isError).toBe(true);
    // 40 sat is over the approval threshold (30) too: the budget refuses it first, before any approval.
    expect((pricey.structuredContent as { error: { code: string } }).error.code).toBe('L402_BUDGET');
    const capped = await call(client, 'fetch', { url: `${middlewareUrl}/read`, max_sats: 2 });
    expect((capped.structuredContent as { error: { code: string } }).error.code).toBe('L402_BUDGET');
    expect((await call(client, 'payments')).structuredContent).toMatchObject({ count: 1 });
  });

  it('delegates a narrowed token that works for its scope and fails outside it; never a wider one', async () => {
    const bought = await call(client, 'fetch', { url: `${middlewareUrl}/read` });
    expect(bought.structuredContent).toMatchObject({
      status: 200,
      body: 'read ok',
      paid: { amount_sats: 5 },
    });
    const widened = await call(client, 'delegate_token', {
      origin: middlewareUrl,
      caveats: ['docs_capabilities=read,write,admin'],
    });
    expect((widened.structuredContent as { error: { code: string } }).error.code).toBe('L402_CAVEAT_WIDENED');
    const delegated = await call(client, 'delegate_token', {
      origin: middlewareUrl,
      caveats: ['docs_capabilities=read'],
    });
    const { authorization, token } = delegated.structuredContent as {
      authorization: string;
      token: { caveats: string[] };
    };
    expect(token.caveats).toContain('docs_capabilities=read');
    const asSubAgent = (path: string) => fetch(`${middlewareUrl}${path}`, { headers: { authorization } });
    const readReply = await asSubAgent('/read');
    expect([readReply.status, await readReply.text()]).toEqual([200, 'read ok']);
    const writeReply = await asSubAgent('/write');
    await writeReply.text();
    expect(writeReply.status).toBe(402);
  });

  it('holds a payment over the approval threshold until the operator approves it out of band', async () => {
    const server = await stdioClient(['--allow-private', '--approval-threshold', '3']);
    const held = await call(server, 'fetch', { url: `${gateway.url}/api/held`, headers: {} });
    // The gateway token is cached from before: no payment needed, no approval asked.
    expect(held.structuredContent).toMatchObject({ status: 200, paid: { reused_token: true } });
    // Another origin (the same app by another name): no token yet, so 5 sat to pay, over the threshold.
    const url = `${middlewareUrl.replace('127.0.0.1', 'localhost')}/write`;
    const waiting = await call(server, 'fetch', { url });
    expect(waiting.isError).toBe(true);
    const { error } = waiting.structuredContent as {
      error: { code: string; approval: { id: string; sats: number } };
    };
    expect(error.code).toBe('L402_AGENT_APPROVAL_REQUIRED');
    expect(error.approval.sats).toBe(5);
    // The agent cannot approve; the operator does, with the CLI.
    const approved = await promisify(execFile)(process.execPath, [bin, 'mcp', 'approve', error.approval.id], {
      env: env(),
    });
    expect(approved.stdout).toMatch(/^approved: 5 sat for GET /);
    const paid = await call(server, 'fetch', { url, approval_id: error.approval.id });
    expect(paid.structuredContent).toMatchObject({ status: 200, body: 'write ok', paid: { amount_sats: 5 } });
    // An approval is used once.
    const reused = await call(server, 'fetch', { url: `${url}?again`, approval_id: error.approval.id });
    expect(reused.structuredContent).toMatchObject({ status: 200, paid: { reused_token: true } });
  });

  it('refuses private and loopback addresses unless the operator allows them', async () => {
    const strict = await stdioClient([]);
    for (const url of [
      `${gateway.url}/api/x`,
      'http://localhost:1/',
      'http://[::1]:1/',
      'http://169.254.169.254/latest',
    ]) {
      const refused = await call(strict, 'fetch', { url });
      expect((refused.structuredContent as { error: { code: string } }).error.code, url).toBe(
        'L402_AGENT_FORBIDDEN',
      );
    }
  });

  it('decodes invoices and tokens', async () => {
    const quote = (await call(client, 'quote', { url: `${gateway.url}/pricey/q` })).structuredContent as {
      price: { sats: number };
    };
    expect(quote.price.sats).toBe(40);
    const reply = await fetch(`${gateway.url}/pricey/q`);
    await reply.text();
    const challenge = reply.headers.get('www-authenticate') ?? '';
    const invoice = /invoice="([^"]+)"/.exec(challenge)![1]!;
    const macaroon = /macaroon="([^"]+)"/.exec(challenge)![1]!;
    const decoded = await call(client, 'decode_invoice', { invoice });
    expect(decoded.structuredContent).toMatchObject({ network: 'regtest', amount_sats: 40, expired: false });
    const token = await call(client, 'decode_token', { token: macaroon });
    expect(token.structuredContent).toMatchObject({
      version: 0,
      caveats: ['services=pricey:0', 'pricey_capabilities='],
    });
  });

  it('reads the wallet: balance and node info', async () => {
    const balance = await call(client, 'wallet_balance');
    expect((balance.structuredContent as { spendable_sats: number }).spendable_sats).toBeGreaterThan(0);
    const info = await call(client, 'node_info');
    expect(info.structuredContent).toMatchObject({ network: 'regtest' });
    expect((info.structuredContent as { pubkey: string }).pubkey).toMatch(/^0[23][0-9a-f]{64}$/);
  });
});

describe('l402 mcp --http', () => {
  it('serves the same tools over streamable HTTP, asks approval by elicitation, and wants its bearer token', async () => {
    const child = (await import('node:child_process')).spawn(
      process.execPath,
      [
        bin,
        'mcp',
        '--http',
        '--port',
        '0',
        '--allow-private',
        '--approval-threshold',
        '1',
        '--token',
        'sekrit',
      ],
      { env: env(), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    closers.push(async () => {
      child.kill('SIGTERM');
    });
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stderr.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const found = /at (http:\/\/\S+\/mcp)/.exec(text);
        if (found) resolve(found[1]!);
      });
      child.once('exit', (code) => reject(new Error(`l402 mcp --http exited ${code}: ${text}`)));
    });
    const anonymous = await fetch(url, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(anonymous.status).toBe(401);

    const asked: string[] = [];
    const client = new Client({ name: 'http-host', version: '1.0.0' }, { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      asked.push(request.params.message);
      return { action: 'accept', content: { approve: true } };
    });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: 'Bearer sekrit' } },
      }),
    );
    closers.push(() => client.close());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(BUYER_TOOLS);
    const paid = await call(client, 'fetch', {
      url: `${middlewareUrl}/read?fresh`,
      headers: { 'x-fresh': '1' },
    });
    // The docs token bought over stdio is cached in the same $L402_HOME: reused, nothing to approve.
    expect(paid.structuredContent).toMatchObject({ status: 200, paid: { reused_token: true } });
    const newOrigin = await call(client, 'fetch', {
      url: `${gateway.url.replace('127.0.0.1', 'localhost')}/api/x`,
    });
    expect(newOrigin.structuredContent).toMatchObject({ status: 200, paid: { amount_sats: 21 } });
    expect(asked).toEqual([expect.stringMatching(/^Pay 21 sat for GET http:\/\/localhost:\d+\/api\/x\?$/)]);
  });
});

describe('l402 mcp --admin', () => {
  it('lists the operator tools and revokes a token through the admin API', async () => {
    const admin = await stdioClient([
      '--admin',
      '--gateway',
      gateway.url,
      '--admin-macaroon',
      gateway.admin!.macaroonPath,
    ]);
    const { tools } = await admin.listTools();
    expect(tools.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'gateway_info',
        'services_list',
        'service_set',
        'transactions',
        'tokens_list',
        'token_revoke',
        'stats',
      ]),
    );
    const services = await call(admin, 'services_list');
    expect(JSON.stringify(services.structuredContent)).toContain('"api"');
    const sold = (await call(admin, 'tokens_list')).structuredContent as {
      tokens: { token_id: string; service_name: string }[];
    };
    const apiToken = sold.tokens.find((t) => t.service_name === 'api');
    expect(apiToken).toBeDefined();
    const revoked = await call(admin, 'token_revoke', { token_id: apiToken!.token_id });
    expect(revoked.isError).toBeFalsy();
    // The buyer's cached token is now refused: the gateway answers with a fresh challenge.
    const buyer = await stdioClient(['--allow-private']);
    const after = await call(buyer, 'quote', { url: `${gateway.url}/api/after-revoke` });
    expect(after.structuredContent).toMatchObject({ status: 402 });
    const wrong = await stdioClient([
      '--admin',
      '--gateway',
      gateway.url,
      '--admin-macaroon',
      join(home, 'config.yaml'),
    ]);
    expect((await call(wrong, 'services_list')).isError).toBe(true);
  });
});

describe('the agent policy', () => {
  it('comes from flags, else L402_MCP_* variables, else config.yaml; bad origins are refused', () => {
    const file = { allowedOrigins: ['https://file.example'], allowPrivate: true, approvalThresholdSats: 7 };
    expect(policyOf({}, {}, file)).toEqual(file);
    expect(
      policyOf(
        {},
        {
          L402_MCP_ALLOWED_ORIGINS: 'https://a.example, https://*.b.example',
          L402_MCP_ALLOW_PRIVATE: '0',
          L402_MCP_APPROVAL_THRESHOLD: '9',
        },
        file,
      ),
    ).toEqual({
      allowedOrigins: ['https://a.example', 'https://*.b.example'],
      allowPrivate: false,
      approvalThresholdSats: 9,
    });
    expect(
      policyOf(
        { allowOrigin: ['https://flag.example'], allowPrivate: true, approvalThreshold: '1' },
        { L402_MCP_APPROVAL_THRESHOLD: '9' },
        file,
      ),
    ).toEqual({ allowedOrigins: ['https://flag.example'], allowPrivate: true, approvalThresholdSats: 1 });
    expect(policyOf({}, {}, {})).toEqual({ allowPrivate: false });
    expect(() => policyOf({ allowOrigin: ['ftp://x'] })).toThrow(/allowed origin ftp:\/\/x/);
    expect(() => policyOf({ allowOrigin: ['https://a.example/path'] })).toThrow();
  });
});
