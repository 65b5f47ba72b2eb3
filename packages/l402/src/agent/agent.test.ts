/**
 * The agent tools outside MCP: the guard (internal addresses by literal and by resolution), and the
 * same buyer tools through LangChain.js and the Vercel AI SDK, paying a middleware app on the devnet,
 * including an origin selling two services (a token refused for the other service is kept).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Devnet } from '@l402/devnet';
import { Approvals, Guard, Tools } from 'l402/agent';
import { aiTools } from 'l402/agent/ai';
import { langchainTools } from 'l402/agent/langchain';
import { Ledger, TokenStore } from 'l402/client';
import { type Backend, connect } from 'l402/lightning';
import * as NodeL402 from 'l402/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const home = mkdtempSync(join(tmpdir(), 'l402-agent-'));
let devnet: Devnet.Devnet;
let payer: Backend;
let server: http.Server;
let paywall: ReturnType<typeof NodeL402.l402>;
let base: string;

beforeAll(async () => {
  devnet = await Devnet.start({ home, publish: false });
  payer = await connect(devnet.document.nodes.payer!.uris.lnd);
  paywall = NodeL402.l402({ backend: devnet.document.nodes.merchant!.uris.lnd, masterKey: 'cd'.repeat(32) });
  const weather = paywall.protect({ service: 'weather', price: 7 }, (_q, r) => r.end('sunny'));
  const maps = paywall.protect({ service: 'maps', price: 9 }, (_q, r) => r.end('a map'));
  server = http.createServer((req, res) =>
    req.url?.startsWith('/maps') ? maps(req, res) : weather(req, res),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await paywall?.close();
  await payer?.close();
  await devnet?.close();
  rmSync(home, { recursive: true, force: true });
});

const context = (over: Partial<Tools.Context> = {}): Tools.Context => ({
  wallet: payer,
  store: TokenStore.memory(),
  ledger: Ledger.memory(),
  policy: { allowPrivate: true },
  filesDir: join(home, 'bodies'),
  ...over,
});

describe('Guard', () => {
  it('tells internal addresses from public ones', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '224.0.0.1',
    ]) {
      expect(Guard.isInternal(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect(Guard.isInternal(a), a).toBe(false);
    }
  });

  it('refuses forbidden URLs before any request, and names resolving to internal addresses when connecting', async () => {
    const policy = { allowedOrigins: ['https://api.example.com', 'https://*.example.org'] };
    expect(() => Guard.check(new URL('https://api.example.com/x'), policy)).not.toThrow();
    expect(() => Guard.check(new URL('https://a.b.example.org/x'), policy)).not.toThrow();
    for (const url of [
      'https://evil.example/x',
      'https://example.org/',
      'ftp://api.example.com/',
      'https://u:p@api.example.com/',
    ]) {
      expect(() => Guard.check(new URL(url), policy), url).toThrow(Guard.AgentError);
    }
    const guarded = Guard.fetch({});
    // This machine's own name resolves to one of its (internal) addresses: refused at connect time.
    await expect(guarded(`http://${hostname()}:65000/`)).rejects.toMatchObject({
      code: 'L402_AGENT_FORBIDDEN',
    });
    await expect(guarded('http://127.0.0.1:65000/')).rejects.toMatchObject({ code: 'L402_AGENT_FORBIDDEN' });
  });
});

describe('framework tools', () => {
  it('LangChain.js: the tools carry their schemas, pay once and reuse the token', async () => {
    const ctx = context();
    const tools = langchainTools(ctx);
    expect(tools.map((t) => t.name).sort()).toContain('fetch');
    const fetchTool = tools.find((t) => t.name === 'fetch')!;
    const first = JSON.parse(String(await fetchTool.invoke({ url: `${base}/weather/today` })));
    expect(first).toMatchObject({ status: 200, body: 'sunny', paid: { amount_sats: 7 } });
    const again = JSON.parse(String(await fetchTool.invoke({ url: `${base}/weather/tomorrow` })));
    expect(again).toMatchObject({ status: 200, paid: { amount_sats: 0, reused_token: true } });
    // The operator's policy holds through the framework: without allowPrivate, loopback is refused.
    const strict = langchainTools({ ...ctx, policy: {} }).find((t) => t.name === 'fetch')!;
    const refused = JSON.parse(String(await strict.invoke({ url: `${base}/weather/today` })));
    expect(refused.error.code).toBe('L402_AGENT_FORBIDDEN');
    expect((await ctx.ledger.payments()).length).toBe(1);
  });

  it('AI SDK: one origin selling two services keeps each token for its own service', async () => {
    const ctx = context();
    const tools = aiTools(ctx);
    const run = (url: string) =>
      (tools.fetch as { execute: (i: unknown, o: unknown) => Promise<Record<string, unknown>> }).execute(
        { url, method: 'GET' },
        { toolCallId: 't', messages: [] },
      );
    expect(await run(`${base}/weather/a`)).toMatchObject({ status: 200, paid: { amount_sats: 7 } });
    // /maps refuses the weather token: a maps token is bought, and the weather token is kept.
    expect(await run(`${base}/maps/b`)).toMatchObject({
      status: 200,
      body: 'a map',
      paid: { amount_sats: 9 },
    });
    expect(await run(`${base}/weather/c`)).toMatchObject({ status: 200, paid: { reused_token: true } });
    expect(await run(`${base}/maps/d`)).toMatchObject({ status: 200, paid: { reused_token: true } });
    expect((await ctx.ledger.payments({ state: 'paid' })).map((p) => p.amountSats)).toEqual([7, 9]);
  });

  it('a payment above the threshold waits for approval; a declined one fails; a granted one is used once', async () => {
    const approvals = Approvals.memory();
    let answer: boolean | undefined;
    const ctx = context({
      policy: { allowPrivate: true, approvalThresholdSats: 5 },
      approvals,
      approve: async () => answer,
    });
    const [fetchTool] = Tools.buyer(ctx);
    const run = (args: Record<string, unknown>) => fetchTool!.run({ method: 'GET', ...args } as never);
    answer = false;
    await expect(run({ url: `${base}/weather/x` })).rejects.toSatisfy(
      (e) => Tools.errorOf(e).code === 'L402_AGENT_DECLINED',
    );
    answer = undefined;
    const pending = await run({ url: `${base}/weather/x` }).catch((e) => Tools.errorOf(e));
    expect(pending).toMatchObject({
      code: 'L402_AGENT_APPROVAL_REQUIRED',
      approval: { sats: 7, url: `${base}/weather/x` },
    });
    const id = (pending as { approval: { id: string } }).approval.id;
    // Not granted yet: still waiting. The approval only covers that URL.
    await expect(run({ url: `${base}/weather/x`, approval_id: id })).rejects.toSatisfy(
      (e) => Tools.errorOf(e).code === 'L402_AGENT_APPROVAL_REQUIRED',
    );
    await approvals.grant(id);
    await expect(run({ url: `${base}/weather/other`, approval_id: id })).rejects.toSatisfy(
      (e) => Tools.errorOf(e).code === 'L402_AGENT_APPROVAL_REQUIRED',
    );
    expect(await run({ url: `${base}/weather/x`, approval_id: id })).toMatchObject({
      status: 200,
      paid: { amount_sats: 7 },
    });
    expect(await approvals.consume(id, { url: `${base}/weather/x`, method: 'GET', sats: 7 })).toBe(false);
    expect((await ctx.ledger.payments({ state: 'paid' })).length).toBe(1);
  });

  it('writes large and binary bodies to a file and returns its path', async () => {
    const big = http.createServer((req, res) => {
      if (req.url === '/bin') {
        res.setHeader('content-type', 'application/octet-stream');
        return res.end(Buffer.from([0, 1, 2, 3]));
      }
      res.setHeader('content-type', 'text/plain');
      res.end('x'.repeat(100_000));
    });
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(big.address() as AddressInfo).port}`;
    try {
      const [fetchTool] = Tools.buyer(context());
      const text = await fetchTool!.run({ url: `${url}/big`, method: 'GET' } as never);
      expect(text).toMatchObject({ status: 200, body_bytes: 100_000, paid: null });
      expect(String(text.body_file)).toContain(join(home, 'bodies'));
      expect(String(text.body_preview)).toHaveLength(2000);
      const binary = await fetchTool!.run({ url: `${url}/bin`, method: 'GET' } as never);
      expect(binary).toMatchObject({ body_binary: true, body_bytes: 4 });
    } finally {
      big.closeAllConnections();
      big.close();
    }
  });
});
