/**
 * A small, honest benchmark loop: each case runs in interleaved rounds of a fixed wall time, the median
 * round is reported, and every figure is printed next to its baseline from the same process.
 */
import os from 'node:os';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

function round(fn) {
  let ops = 0;
  const batch = 256;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ROUND_MS) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - start) / 1e9);
}

/** Runs `cases` ({ name: fn }) in interleaved rounds; returns { name: median ops/s }. */
export function measure(cases) {
  const names = Object.keys(cases);
  for (const name of names) round(cases[name]); // warm-up
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < ROUNDS; r++) for (const name of names) samples[name].push(round(cases[name]));
  return Object.fromEntries(
    names.map((n) => {
      const s = samples[n].sort((a, b) => a - b);
      return [n, s[Math.floor(s.length / 2)]];
    }),
  );
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${cpu}, ${os.cpus().length} cores, Node ${process.version}, ${os.platform()} ${os.arch()}`;
}

export const fmt = (n) => Math.round(n).toLocaleString('en-US');

/** Async twin of {@link measure}: sequential calls of each case for `ms`, rounds interleaved. */
export async function measureAsync(cases, { ms = 1500, rounds = 3 } = {}) {
  const names = Object.keys(cases);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) await cases[name](); // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const name of names) {
      let ops = 0;
      const start = performance.now();
      while (performance.now() - start < ms / rounds) {
        await cases[name]();
        ops++;
      }
      samples[name].push(ops / ((performance.now() - start) / 1000));
    }
  }
  return Object.fromEntries(
    names.map((n) => {
      const s = samples[n].sort((a, b) => a - b);
      return [n, s[Math.floor(s.length / 2)]];
    }),
  );
}

/** `name: N ops/s (Rx the baseline's time)` lines, the first case being the baseline. */
export function ratioLines(results) {
  const [[baseName, base]] = Object.entries(results);
  return Object.entries(results).map(([name, ops]) =>
    name === baseName
      ? `${name}: ${fmt(ops)} ops/s`
      : `${name}: ${fmt(ops)} ops/s (${(base / ops).toFixed(2)}x the baseline's time)`,
  );
}
