/**
 * `npm run bench`: every benchmark in bench/*.bench.js, one after the other in this process, each
 * printing `name: N ops/s` lines beside its baseline.
 */
import { readdirSync } from 'node:fs';
import { machine } from './lib.js';

const only = process.argv[2];
console.log(`machine: ${machine()}`);
for (const file of readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.bench.js'))
  .sort()) {
  if (only !== undefined && !file.startsWith(only)) continue;
  const bench = await import(new URL(file, import.meta.url).href);
  console.log(`\n## ${bench.title}`);
  const { lines } = await bench.run();
  for (const line of lines) console.log(line);
}
