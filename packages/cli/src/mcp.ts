/**
 * `l402 mcp`: the buyer tools of `l402/agent` as a Model Context Protocol server, over stdio (default)
 * or streamable HTTP (`--http`, loopback by default, Host/Origin checked, optional bearer token). The
 * wallet, token store, ledger and budgets are the ones `l402 get` uses (`$L402_HOME`, config.yaml,
 * `L402_*`); the agent policy (allowed origins, private addresses, approval threshold) comes from flags
 * or `L402_MCP_*` variables set by the operator: no tool can change any of it.
 *
 * Payments above the approval threshold ask the human through MCP elicitation when the host supports
 * it; otherwise the call returns a pending approval, granted with `l402 mcp approve <id>`.
 *
 * `--admin` serves the gateway operator's tools instead (see mcpAdmin.ts).
 *
 * @example
 * l402 mcp --allow-origin https://api.example.com --approval-threshold 100
 * l402 mcp --http --port 3402 --allow-private
 * l402 mcp approve 1f2e3d4c5b6a7980
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Command } from 'commander';
import { Approvals, Tools } from 'l402/agent';
import { withFileLock, writeAtomic } from 'l402/client/node';
import { type Run, UsageError, untilSignal } from './cli.js';
import * as Config from './config.js';
import * as Session from './session.js';

export interface McpOptions {
  readonly http?: boolean;
  readonly host?: string;
  readonly port?: string;
  readonly token?: string;
  readonly allowOrigin?: string[];
  readonly allowPrivate?: boolean;
  readonly approvalThreshold?: string;
  readonly admin?: boolean;
  readonly gateway?: string;
  readonly adminMacaroon?: string;
  readonly wallet?: string[];
  readonly maxCost?: string;
  readonly maxFee?: string;
}

/** The agent policy: flags, else `L402_MCP_*`, else config.yaml's `mcp:` section. */
export function policyOf(
  options: McpOptions,
  env: NodeJS.ProcessEnv = process.env,
  file: Config.McpPolicy = {},
): Tools.Policy {
  const list = (v: string | undefined) =>
    v === undefined
      ? undefined
      : v
          .split(/[\s,]+/)
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
  const origins = options.allowOrigin?.length
    ? options.allowOrigin
    : (list(env.L402_MCP_ALLOWED_ORIGINS) ?? file.allowedOrigins);
  for (const o of origins ?? []) {
    if (!/^https?:\/\/(\*\.)?[^/*]+$/i.test(o.replace(/\/+$/, ''))) {
      throw new UsageError(`allowed origin ${o}: expected scheme://host[:port] or scheme://*.domain`);
    }
  }
  const threshold = options.approvalThreshold ?? env.L402_MCP_APPROVAL_THRESHOLD;
  const allowPrivateEnv = env.L402_MCP_ALLOW_PRIVATE;
  const allowPrivate =
    options.allowPrivate === true ||
    (allowPrivateEnv !== undefined ? /^(1|true|yes)$/i.test(allowPrivateEnv) : file.allowPrivate === true);
  const thresholdSats =
    threshold !== undefined ? Config.satoshis(threshold, '--approval-threshold') : file.approvalThresholdSats;
  return {
    ...(origins !== undefined ? { allowedOrigins: origins } : {}),
    allowPrivate,
    ...(thresholdSats !== undefined ? { approvalThresholdSats: thresholdSats } : {}),
  };
}

/** Approvals in `$L402_HOME/approvals.json` (0600, atomic, locked), shared by the server and `mcp approve`. */
export function fileApprovals(home: string): Approvals.Approvals {
  const file = join(home, 'approvals.json');
  return Approvals.over({
    read: async () => {
      try {
        const parsed = JSON.parse(await readFile(file, 'utf8')) as unknown;
        return Array.isArray(parsed) ? (parsed as Approvals.Pending[]) : [];
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw error;
      }
    },
    write: (all) => writeAtomic(file, `${JSON.stringify(all, null, 2)}\n`),
    locked: (fn) => withFileLock(join(home, 'approvals.lock'), fn),
  });
}

/** One MCP server with every buyer tool registered; elicitation asks the human above the threshold. */
export function buyerServer(context: Tools.Context, version: string): McpServer {
  const server = new McpServer(
    { name: 'l402', version },
    {
      instructions:
        'Tools to call paid HTTP APIs (L402 / MPP over Lightning) within the operator’s budgets. Use quote ' +
        'for a price, fetch to call and pay, budget_status before expensive work, delegate_token to give a ' +
        'sub-agent narrower access. Errors carry a code: L402_BUDGET (a limit would be exceeded), ' +
        'L402_AGENT_APPROVAL_REQUIRED (wait for the operator, then call again with approval_id), ' +
        'L402_AGENT_FORBIDDEN (origin or address not allowed).',
    },
  );
  const approve = async (request: Approvals.Request): Promise<boolean | undefined> => {
    if (server.server.getClientCapabilities()?.elicitation === undefined) return context.approve?.(request);
    const answer = await server.server.elicitInput({
      message: `Pay ${request.sats} sat for ${request.method} ${request.url}?`,
      requestedSchema: {
        type: 'object',
        properties: { approve: { type: 'boolean', title: 'Approve this payment', default: false } },
        required: ['approve'],
      },
    });
    return answer.action === 'accept' && answer.content?.approve === true;
  };
  for (const tool of Tools.buyer({ ...context, approve })) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.input,
        annotations: {
          readOnlyHint: tool.readOnly,
          openWorldHint: tool.name === 'fetch' || tool.name === 'quote',
        },
      },
      async (args: Record<string, unknown>) => {
        try {
          const result = await tool.run(args as never);
          return {
            content: [{ type: 'text' as const, text: JSON.stringify(result, null, 2) }],
            structuredContent: result,
          };
        } catch (error) {
          const failure = { error: Tools.errorOf(error) };
          return {
            isError: true,
            content: [{ type: 'text' as const, text: JSON.stringify(failure, null, 2) }],
            structuredContent: failure,
          };
        }
      },
    );
  }
  return server;
}

/** Serves `make()` servers over streamable HTTP, one per session; resolves with the bound address. */
export async function serveHttp(
  make: () => McpServer,
  options: { host: string; port: number; token?: string },
): Promise<{ url: string; close(): Promise<void> }> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const expected = options.token === undefined ? undefined : Buffer.from(`Bearer ${options.token}`);
  const authorized = (req: IncomingMessage) => {
    if (expected === undefined) return true;
    const got = Buffer.from(req.headers.authorization ?? '');
    return got.length === expected.length && timingSafeEqual(got, expected);
  };
  const reply = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
  };
  const http = createServer(async (req, res) => {
    try {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp')
        return reply(res, 404, 'not found: the MCP endpoint is /mcp');
      if (!authorized(req)) return reply(res, 401, 'unauthorized: send Authorization: Bearer <token>');
      const id = req.headers['mcp-session-id'];
      let transport = typeof id === 'string' ? sessions.get(id) : undefined;
      if (transport === undefined) {
        if (typeof id === 'string') return reply(res, 404, 'unknown session');
        if (req.method !== 'POST') return reply(res, 400, 'start a session with an initialize POST');
        const hosts = [`${options.host}:${port}`, `localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`];
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          enableDnsRebindingProtection: true,
          allowedHosts: hosts,
          onsessioninitialized: (sid) => {
            sessions.set(sid, created);
          },
        });
        created.onclose = () => {
          if (created.sessionId !== undefined) sessions.delete(created.sessionId);
        };
        await make().connect(created);
        transport = created;
      }
      await transport.handleRequest(req, res);
    } catch (error) {
      if (!res.headersSent) reply(res, 500, (error as Error).message);
    }
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port, options.host, () => resolve());
  });
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const shown = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${shown}:${port}/mcp`,
    async close() {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
    },
  };
}

/**
 * Adds `l402 mcp` (and `mcp approve`, `mcp approvals`) to the program.
 *
 * @example
 * registerMcp(program, run, version);
 */
export function registerMcp(program: Command, run: Run, version: string): void {
  const repeatable = (value: string, previous: string[] = []) => [...previous, value];
  const mcp = program
    .command('mcp')
    .description('serve the paying tools to AI agents over MCP (stdio, or streamable HTTP with --http)')
    .option('--http', 'serve streamable HTTP instead of stdio')
    .option('--host <address>', 'HTTP address to bind', '127.0.0.1')
    .option('--port <n>', 'HTTP port (0: any free port)', '3402')
    .option('--token <secret>', 'require Authorization: Bearer <secret> over HTTP (or L402_MCP_TOKEN)')
    .option(
      '--allow-origin <origin>',
      'an origin the agent may call (repeatable; default any public one)',
      repeatable,
    )
    .option('--allow-private', 'let the agent reach loopback and private addresses (development, the devnet)')
    .option('--approval-threshold <sats>', 'payments above this many sats need the human’s approval')
    .option('--admin', 'serve the gateway operator’s tools (admin API) instead of the buyer’s')
    .option('--gateway <url>', 'the gateway for --admin (default http://127.0.0.1:8081 or L402_GATEWAY_URL)')
    .option('--admin-macaroon <file>', 'admin macaroon file for --admin (default $L402_HOME/admin.macaroon)')
    .option('--wallet <uri>', 'wallet URI (repeatable: fallback order)', repeatable)
    .option('--max-cost <sats>', 'most one call may pay')
    .option('--max-fee <sats>', 'most routing fee per payment')
    .action(async (options: McpOptions) => {
      const settings = Config.load({
        ...(options.wallet !== undefined ? { wallets: options.wallet } : {}),
        ...(options.maxCost !== undefined
          ? { maxCostSats: Config.satoshis(options.maxCost, '--max-cost') }
          : {}),
        ...(options.maxFee !== undefined ? { maxFeeSats: Config.satoshis(options.maxFee, '--max-fee') } : {}),
      });
      let make: () => McpServer;
      let close: () => Promise<void>;
      if (options.admin) {
        const { adminServer } = await import('./mcpAdmin.js');
        const admin = await adminServer(settings.home, options, version);
        make = admin.make;
        close = admin.close;
      } else {
        const policy = policyOf(options, process.env, settings.mcp);
        const session = await Session.open(settings);
        const context: Tools.Context = {
          wallet: {
            kind: session.wallet.kind,
            pay: (r, o) => session.wallet.pay(r, o),
            lookupPayment: (h) => session.wallet.lookupPayment(h),
            info: async () => (await session.backend()).info(),
            balance: async () => (await session.backend()).balance(),
          },
          store: session.store,
          ledger: session.ledger,
          budget: settings.budget,
          ...(settings.maxCostSats !== undefined ? { maxCostSats: settings.maxCostSats } : {}),
          ...(settings.maxFeeSats !== undefined ? { maxFeeSats: settings.maxFeeSats } : {}),
          policy,
          approvals: fileApprovals(settings.home),
          filesDir: join(settings.home, 'mcp-bodies'),
        };
        make = () => buyerServer(context, version);
        close = () => session.close();
      }
      try {
        if (options.http) {
          const port = Number(options.port);
          if (!Number.isInteger(port) || port < 0 || port > 65535)
            throw new UsageError(`--port ${options.port}: not a port`);
          const token = options.token ?? process.env.L402_MCP_TOKEN;
          const served = await serveHttp(make, {
            host: options.host ?? '127.0.0.1',
            port,
            ...(token ? { token } : {}),
          });
          run.io.stderr(`l402 mcp: serving ${options.admin ? 'operator' : 'buyer'} tools at ${served.url}\n`);
          await untilSignal();
          await served.close();
        } else {
          const server = make();
          const transport = new StdioServerTransport();
          const closed = new Promise<void>((resolve) => {
            transport.onclose = () => resolve();
            process.stdin.once('end', () => resolve());
          });
          await server.connect(transport);
          await Promise.race([closed, untilSignal()]);
          await server.close();
        }
      } finally {
        await close();
      }
    });

  mcp
    .command('approve')
    .description('grant a payment an agent is waiting for (its approval id)')
    .argument('<id>', 'approval id from the tool’s L402_AGENT_APPROVAL_REQUIRED answer')
    .action(async (id: string) => {
      const granted = await fileApprovals(Config.load().home).grant(id);
      if (granted === undefined) throw new UsageError(`no pending approval ${id} (it may have expired)`);
      run.io.stdout(
        `approved: ${granted.sats} sat for ${granted.method} ${granted.url} (until ${new Date(granted.expiresAt).toISOString()})\n`,
      );
    });

  mcp
    .command('approvals')
    .description('list the payments waiting for approval')
    .action(async () => {
      const all = await fileApprovals(Config.load().home).list();
      if (all.length === 0) run.io.stdout('no pending approvals\n');
      for (const a of all) {
        run.io.stdout(`${a.id}  ${a.granted ? 'granted' : 'pending'}  ${a.sats} sat  ${a.method} ${a.url}\n`);
      }
    });
}
