/**
 * The upstream every proxy case reaches: node:http answering any request with the same 512-byte JSON
 * body (fixed length, keep-alive), so what is measured is the path to it, not the work behind it.
 */
import { once } from 'node:events';
import * as http from 'node:http';
import { serve } from './child.js';

const body = Buffer.from(`${JSON.stringify({ ok: true, pad: 'x'.repeat(512 - 21) })}\n`);
const server = http.createServer((request, response) => {
  // Drain any request body before answering, as a real backend would.
  request.resume();
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  response.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1');
await once(server, 'listening');
serve({ port: server.address().port }, () => {
  server.closeAllConnections();
  server.close();
});
