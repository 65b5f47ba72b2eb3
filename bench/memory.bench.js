/**
 * Memory and errors at 1,000 concurrent keep-alive connections: `bench/load1000.js` for
 * `BENCH_LOAD_SECONDS` (10) seconds through the bare Node proxy (the baseline) and the gateway, every
 * request with a paid credential; the gateway's resident memory beside the bare proxy's. The 60 s run
 * is `node bench/load1000.js`.
 */
import { lines, measure } from './load1000.js';

export const title = 'Memory and errors at 1,000 keep-alive connections';

export async function run() {
  const result = await measure({ seconds: Number(process.env.BENCH_LOAD_SECONDS ?? 10), connections: 1_000 });
  return { lines: lines(result), results: result };
}
