/**
 * What the server benchmarks share: their servers as child processes (bench/servers/, each reporting
 * where it listens and, when asked, the CPU time it used), the load (autocannon in this process, with
 * each response's latency kept in microseconds), interleaved rounds reported by their median, and the
 * CPU taken by processes outside the bench.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import autocannon from 'autocannon';

const READY_TIMEOUT_MS = 60_000;

/** Children still running, killed outright if this process exits without stopping them. */
const running = new Set();
export const killLeftovers = () => {
  for (const child of running) child.kill('SIGKILL');
};

/**
 * Forks `bench/servers/<script>`, sends it `settings`, and resolves with what it reports once ready
 * (rejects if it exits or stays silent first).
 */
export function startServer(script, settings, { stderr = 'inherit', execArgv = [] } = {}) {
  const child = fork(new URL(`./servers/${script}`, import.meta.url), [], {
    stdio: ['ignore', 'inherit', stderr, 'ipc'],
    execArgv,
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.send(settings);
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      reject(new Error(`bench/servers/${script} ${why}`));
    };
    const onExit = (code, signal) => fail(`exited (${signal ?? code}) before it was ready`);
    const onMessage = (message) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({ child, ...message.ready });
    };
    const timer = setTimeout(() => fail(`was not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    child.once('exit', onExit);
    child.once('message', onMessage);
  });
}

/** Microseconds of CPU (user + system) `child` has used so far, as it reports them. */
export function cpuTime(child) {
  return new Promise((resolve, reject) => {
    const onExit = (code, signal) => {
      child.off('message', onMessage);
      reject(new Error(`a benchmark server exited (${signal ?? code}) during the run`));
    };
    const onMessage = (message) => {
      if (message?.cpu === undefined) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message.cpu);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send('cpu');
  });
}

/** SIGTERM to every child still running (SIGKILL after 5 s); resolves when all have exited. */
export async function stopServers() {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

/**
 * CPU time (clock ticks) the whole machine has spent in user and system mode, and the part of it spent
 * by `pids`; undefined where there is no /proc. The rest is other processes competing with the bench.
 */
export function cpuTicks(pids) {
  try {
    const [, user, nice, system] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).map(Number);
    let ours = 0;
    for (const pid of pids) {
      // Fields 14 and 15 (utime, stime), counted after the parenthesised command name.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ours += Number(fields[11]) + Number(fields[12]);
    }
    return { machine: user + nice + system, ours };
  } catch {
    return undefined;
  }
}

/** `others: N% …` for the lines, from two {@link cpuTicks} readings `seconds` apart. */
export function othersLine(before, after, seconds) {
  if (before === undefined || after === undefined) return [];
  const ticksPerSecond = 100; // USER_HZ, 100 on every Linux architecture Node runs on
  const others = (after.machine - before.machine - (after.ours - before.ours)) / ticksPerSecond;
  const share = Math.max(0, others / (seconds * cpus().length));
  return [
    `others: processes outside this bench used ${(share * 100).toFixed(0)}% of the machine's CPU while it ` +
      `measured${share > 0.05 ? ' — the figures are disturbed, run again on a quiet machine' : ''}`,
  ];
}

/**
 * One autocannon run; every response must have `status`. Returns requests/s of those responses, their
 * count, and a histogram of their latencies in microseconds.
 */
export async function load(url, { connections, seconds, headers = {}, status = 200 }) {
  const latency = createHistogram();
  let matched = 0;
  let other = 0;
  const run = autocannon({ url, connections, pipelining: 1, duration: seconds, headers });
  run.on('response', (_client, statusCode, _bytes, ms) => {
    if (statusCode !== status) return void other++;
    matched++;
    latency.record(Math.max(1, Math.round(ms * 1000)));
  });
  const result = await run;
  if (other > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(
      `${url}: ${other} answers other than ${status}, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
  return { rps: matched / result.duration, count: matched, latency };
}

export const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Every case (`{ url, server }`) once for warm-up of `warmupS` seconds (unless `warm`), then `rounds`
 * interleaved rounds of `roundS` seconds;
 * per case the median round's requests/s, p50, p99, and CPU time per request of `server` (the process
 * answering the load generator). Medians of rounds, so one round disturbed by the machine does not
 * decide a figure (a p99 over all rounds' responses would be that round's tail).
 */
export async function rounds(cases, { warm = false, rounds: count, warmupS, roundS, ...options }) {
  const names = Object.keys(cases);
  if (!warm) for (const name of names) await load(cases[name].url, { ...options, seconds: warmupS });
  const samples = Object.fromEntries(names.map((n) => [n, { rps: [], cpu: [], p50: [], p99: [] }]));
  for (let r = 0; r < count; r++) {
    for (const name of names) {
      const { url, server } = cases[name];
      const before = await cpuTime(server);
      const round = await load(url, { ...options, seconds: roundS });
      const s = samples[name];
      s.cpu.push(((await cpuTime(server)) - before) / round.count);
      s.rps.push(round.rps);
      s.p50.push(round.latency.percentile(50) / 1000);
      s.p99.push(round.latency.percentile(99) / 1000);
    }
  }
  return Object.fromEntries(
    names.map((n) => [n, Object.fromEntries(Object.entries(samples[n]).map(([k, v]) => [k, median(v)]))]),
  );
}

/**
 * The upstream (512-byte JSON) and the devnet (under `<home>/devnet`) that every gateway bench puts
 * behind its servers, started together; `target` is the upstream's `host:port` for a gateway config.
 */
export async function startBackends(home) {
  const [upstream, devnet] = await Promise.all([
    startServer('upstream.js', {}),
    startServer('devnet.js', { home: join(home, 'devnet') }),
  ]);
  return { upstream, devnet, target: `127.0.0.1:${upstream.port}` };
}
