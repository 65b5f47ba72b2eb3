/**
 * The baseline proxy: the least a Node reverse proxy can do and still be correct. node:http in front,
 * an undici `Pool` (the gateway's own undici, so the transport is the same) behind, hop-by-hop headers
 * dropped both ways, bodies streamed. No routing, no auth, no logging, no forwarded-for headers.
 */
import { once } from 'node:events';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import { pipeline } from 'node:stream/promises';
import { serve, settings } from './child.js';

const { Pool } = createRequire(new URL('../../packages/gateway/package.json', import.meta.url))('undici');

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

const { upstream } = await settings();
const pool = new Pool(`http://${upstream}`);
const server = http.createServer(async (request, response) => {
  const headers = {};
  for (const [name, value] of Object.entries(request.headers))
    if (!HOP_BY_HOP.has(name)) headers[name] = value;
  headers.host = upstream;
  const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'];
  try {
    const reply = await pool.request({
      method: request.method,
      path: request.url,
      headers,
      body: hasBody ? request : null,
    });
    for (const [name, value] of Object.entries(reply.headers)) {
      if (!HOP_BY_HOP.has(name) && value !== undefined) response.setHeader(name, value);
    }
    response.writeHead(reply.statusCode);
    await pipeline(reply.body, response);
  } catch {
    if (!response.headersSent) response.writeHead(502).end();
    else response.destroy();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serve({ port: server.address().port }, async () => {
  server.closeAllConnections();
  server.close();
  await pool.close();
});
