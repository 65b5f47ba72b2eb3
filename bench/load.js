/**
 * What the server benchmarks share: their servers as child processes (bench/servers/, each reporting
 * where it listens and, when asked, the CPU time it used), the load (autocannon in this process, with
 * each response's latency kept in microseconds), interleaved rounds reported by their median, and the
 * CPU taken by processes outside the bench.
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { delimiter, join } from 'node:path';
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
      // Fields 14 to 17 (utime, stime, and cutime, cstime: its children that have exited and been
      // waited for, such as a load generator it ran), counted after the parenthesised command name.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ours += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
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

/** The path of `name` on PATH when it is there and executable, else undefined. */
export function command(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return undefined;
}

/**
 * Pins every thread of process `pid` to CPU `cpu` (Linux `taskset`), so a server and its load
 * generator each have a core of their own instead of trading both; false where that cannot be done.
 */
export function pin(pid, cpu) {
  if (cpus().length < 2 || command('taskset') === undefined) return false;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs a command to its end; resolves with what it printed (stdout and stderr together) and its exit code. */
function output(file, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
    });
    child.stderr.on('data', (chunk) => {
      text += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ text, code }));
  });
}

const UNIT_MS = { us: 0.001, ms: 1, s: 1000 };

/**
 * One run of [wrk](https://github.com/wg/wrk) (one thread, `connections` keep-alive connections,
 * `seconds` whole seconds; pinned to `cpu` when given); every response must be 2xx. Returns
 * requests/s, their count, and p50/p99 in ms.
 */
export async function wrk(url, { connections, seconds, headers = {}, cpu }) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  args.push(url);
  const { text, code } =
    cpu !== undefined && command('taskset') !== undefined
      ? await output('taskset', ['-c', String(cpu), 'wrk', ...args])
      : await output('wrk', args);
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)\b/.exec(text);
  if (code !== 0 || done === null) throw new Error(`wrk ${url} failed (${code}): ${text.trim()}`);
  const failures = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text);
  if (failures !== null) throw new Error(`${url}: ${failures[0]}`);
  const count = Number(done[1]);
  const elapsed = Number(done[2]) * (done[3] === 'm' ? 60 : UNIT_MS[done[3]] / 1000);
  const percentile = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(text);
    return m === null ? Number.NaN : Number(m[1]) * UNIT_MS[m[2]];
  };
  return { rps: count / elapsed, count, p50: percentile(50), p99: percentile(99) };
}

/**
 * User-space instructions retired by process `pid` over the next `seconds` (`perf stat`), a count that
 * the rest of the machine hardly moves, unlike time; undefined where perf or its counters are missing.
 */
export async function instructions(pid, seconds) {
  if (command('perf') === undefined) return undefined;
  const { text } = await output('perf', [
    'stat',
    '-x,',
    '-e',
    'instructions:u',
    '-p',
    String(pid),
    '--',
    'sleep',
    String(seconds),
  ]);
  const m = /^(\d+),[^,]*,instructions/m.exec(text);
  return m === null ? undefined : Number(m[1]);
}
