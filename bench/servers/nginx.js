/**
 * nginx as the reverse proxy to beat: `proxy_pass` to the benchmark upstream with HTTP/1.1 keep-alive
 * to it (a pool of 64), one worker, no access log, in a temporary prefix. Reports its port like every
 * bench server, and answers `'cpu'` with the CPU time of the nginx processes (master and worker, from
 * /proc, in µs), not this wrapper's.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settings } from './child.js';

const { upstream, binary = '/usr/sbin/nginx' } = await settings();
const probe = net.createServer().listen(0, '127.0.0.1');
await once(probe, 'listening');
const port = probe.address().port;
await new Promise((r) => probe.close(r));

const prefix = mkdtempSync(join(tmpdir(), 'l402-bench-nginx-'));
const conf = join(prefix, 'nginx.conf');
writeFileSync(
  conf,
  `daemon off;
master_process on;
worker_processes 1;
pid ${join(prefix, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(prefix, 'body')};
  proxy_temp_path ${join(prefix, 'proxy')};
  fastcgi_temp_path ${join(prefix, 'fastcgi')};
  uwsgi_temp_path ${join(prefix, 'uwsgi')};
  scgi_temp_path ${join(prefix, 'scgi')};
  upstream backend { server ${upstream}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
);
const nginx = spawn(binary, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });

/** Ticks (1/100 s) of CPU used by nginx's master and its children. */
function ticks() {
  const pids = [nginx.pid];
  try {
    pids.push(
      ...readFileSync(`/proc/${nginx.pid}/task/${nginx.pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  } catch {}
  let sum = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      sum += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return sum;
}

const stop = async () => {
  if (nginx.exitCode === null) {
    nginx.kill('SIGQUIT');
    await once(nginx, 'exit');
  }
  rmSync(prefix, { recursive: true, force: true });
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('disconnect', stop);
nginx.once('exit', (code) => {
  if (code !== 0 && code !== null) process.exit(1);
});
// Ready once it accepts connections.
for (let i = 0; ; i++) {
  const ok = await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
  if (ok) break;
  if (i > 200) throw new Error('nginx did not start listening');
  await new Promise((r) => setTimeout(r, 25));
}
process.on('message', (message) => {
  if (message === 'cpu') process.send({ cpu: ticks() * 10_000 });
});
process.send({ ready: { port } });
