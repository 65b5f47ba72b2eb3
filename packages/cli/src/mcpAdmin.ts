/**
 * `l402 mcp --admin`: the gateway operator's tools for an operator's agent, over the gateway's admin
 * REST API (`/api/admin/…`) with the admin macaroon: info, services (list, set price/route, delete),
 * transactions, tokens (list, revoke) and stats. Calls go through the same client as `l402 admin`.
 *
 * @example
 * l402 mcp --admin --gateway http://127.0.0.1:8081 --admin-macaroon ~/.l402/admin.macaroon
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { call, query } from './admin.js';

interface AdminOptions {
  readonly gateway?: string;
  readonly adminMacaroon?: string;
}

interface AdminTool {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  readonly input: z.ZodRawShape;
  readonly annotations: { readOnlyHint: boolean; destructiveHint?: boolean; idempotentHint?: boolean };
  run(args: Record<string, unknown>): Promise<unknown>;
}

const SERVICE_NAME = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/)
  .describe('service name');

/**
 * The operator tools, bound to one gateway and macaroon.
 *
 * @example
 * const tools = adminTools({ gateway: 'http://127.0.0.1:8081' }, home);
 */
export function adminTools(options: AdminOptions, home: string): AdminTool[] {
  const connection = {
    ...(options.gateway !== undefined ? { url: options.gateway } : {}),
    ...(options.adminMacaroon !== undefined ? { macaroon: options.adminMacaroon } : {}),
    home,
  };
  const api = (method: string, path: string, body?: unknown) => call(connection, method, path, body);
  return [
    {
      name: 'gateway_info',
      title: 'Gateway info',
      description: 'The gateway’s version, network, node, listen address and counts.',
      input: {},
      annotations: { readOnlyHint: true },
      run: () => api('GET', 'api/admin/info'),
    },
    {
      name: 'services_list',
      title: 'Paid services',
      description:
        'Every service the gateway sells: name, route (host/path regexps), upstream, price in sats, auth.',
      input: {},
      annotations: { readOnlyHint: true },
      run: () => api('GET', 'api/admin/services'),
    },
    {
      name: 'service_set',
      title: 'Create or change a service',
      description:
        'Change a service’s price (sats) or route, or create one (address and path needed). Applied at ' +
        'once, without a restart, and persisted.',
      input: {
        name: SERVICE_NAME,
        price: z.number().int().nonnegative().optional().describe('price in sats'),
        address: z.string().optional().describe('upstream host:port (new services)'),
        protocol: z.enum(['http', 'https']).optional(),
        host_regexp: z.string().optional(),
        path_regexp: z.string().optional(),
        auth: z.string().optional().describe('on, off or "freebie N"'),
        create: z.boolean().default(false).describe('true to create a new service'),
      },
      annotations: { readOnlyHint: false, idempotentHint: true },
      run: (a) => {
        const body = Object.fromEntries(
          Object.entries({
            name: a.name,
            price: a.price === undefined ? undefined : String(a.price),
            address: a.address,
            protocol: a.protocol,
            hostregexp: a.host_regexp,
            pathregexp: a.path_regexp,
            auth: a.auth,
          }).filter(([, v]) => v !== undefined),
        );
        return a.create
          ? api('POST', 'api/admin/services', body)
          : api('PUT', `api/admin/services/${encodeURIComponent(String(a.name))}`, body);
      },
    },
    {
      name: 'service_delete',
      title: 'Delete a service',
      description: 'Stop selling a service (its requests get 404 from now on).',
      input: { name: SERVICE_NAME },
      annotations: { readOnlyHint: false, destructiveHint: true },
      run: (a) => api('DELETE', `api/admin/services/${encodeURIComponent(String(a.name))}`),
    },
    {
      name: 'transactions',
      title: 'Transactions',
      description: 'Invoices issued and settled, newest first, with filters and paging.',
      input: {
        service: z.string().optional(),
        state: z.enum(['pending', 'settled']).optional(),
        start_date: z.string().optional().describe('RFC 3339 time, e.g. 2026-01-01T00:00:00Z'),
        end_date: z.string().optional().describe('RFC 3339 time'),
        offset: z.number().int().nonnegative().optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      },
      annotations: { readOnlyHint: true },
      run: (a) => api('GET', `api/admin/transactions${query(a)}`),
    },
    {
      name: 'tokens_list',
      title: 'Tokens sold',
      description: 'Tokens (paid or pending), with service, amount and state.',
      input: {
        service: z.string().optional(),
        offset: z.number().int().nonnegative().optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      },
      annotations: { readOnlyHint: true },
      run: (a) => api('GET', `api/admin/tokens${query(a)}`),
    },
    {
      name: 'token_revoke',
      title: 'Revoke a token',
      description: 'Refuse a token from now on, on every gateway instance sharing the store.',
      input: {
        token_id: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .describe('64 hex digits'),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true },
      run: (a) => api('DELETE', `api/admin/tokens/${a.token_id}`),
    },
    {
      name: 'stats',
      title: 'Revenue and counts',
      description: 'Revenue and counts of challenges and payments, per service and over time.',
      input: {
        from: z.string().optional().describe('RFC 3339 time'),
        to: z.string().optional().describe('RFC 3339 time'),
        bucket: z.number().int().positive().optional().describe('seconds per time bucket'),
      },
      annotations: { readOnlyHint: true },
      run: (a) => api('GET', `api/admin/stats${query(a)}`),
    },
  ];
}

/** The operator's MCP server factory. */
export async function adminServer(
  home: string,
  options: AdminOptions,
  version: string,
): Promise<{ make: () => McpServer; close: () => Promise<void> }> {
  const tools = adminTools(options, home);
  const make = () => {
    const server = new McpServer(
      { name: 'l402-admin', version },
      {
        instructions:
          'Operator tools for an L402 gateway: read revenue and transactions, change prices, revoke tokens. ' +
          'Changes apply at once to live traffic; confirm destructive ones with the human.',
      },
    );
    for (const tool of tools) {
      server.registerTool(
        tool.name,
        {
          title: tool.title,
          description: tool.description,
          inputSchema: tool.input,
          annotations: tool.annotations,
        },
        async (args: Record<string, unknown>) => {
          try {
            const result = (await tool.run(args)) as Record<string, unknown>;
            return {
              content: [{ type: 'text' as const, text: JSON.stringify(result, null, 2) }],
              structuredContent: result,
            };
          } catch (error) {
            const failure = { error: { code: 'L402_ADMIN_ERROR', message: (error as Error).message } };
            return {
              isError: true,
              content: [{ type: 'text' as const, text: JSON.stringify(failure) }],
              structuredContent: failure,
            };
          }
        },
      );
    }
    return server;
  };
  return { make, close: async () => {} };
}
