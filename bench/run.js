/**
 * `npm run bench`: every benchmark in bench/*.bench.js (whatever files are there, in name order), one
 * after the other in this process tree, each printing its lines beside its baseline; then, on a full
 * run, the whole report written to bench/RESULTS.md with the machine, the date and the commit it
 * measured. `npm run bench -- gateway` runs only the files whose name starts with "gateway" and
 * leaves RESULTS.md alone. A bench that fails is reported as failed and the others still run; the
 * exit code is 1 then.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { machine } from './lib.js';

const only = process.argv[2];
const here = new URL('.', import.meta.url);

function commit() {
  try {
    const hash = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: fileURLToPath(here),
      encoding: 'utf8',
    });
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: fileURLToPath(here),
      encoding: 'utf8',
    });
    return `${hash.trim()}${dirty.trim() === '' ? '' : ' (with uncommitted changes)'}`;
  } catch {
    return 'unknown';
  }
}

const started = new Date();
const header = [
  `machine: ${machine()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM (${(freemem() / 2 ** 30).toFixed(1)} GiB free), ` +
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} on ${cpus().length} cores at the start`,
];
console.log(header[0]);
const sections = [];
let failed = 0;
for (const file of readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .sort()) {
  if (only !== undefined && !file.startsWith(only)) continue;
  const t0 = performance.now();
  let title = file;
  let lines;
  try {
    const bench = await import(new URL(file, here).href);
    title = bench.title ?? file;
    console.log(`\n## ${title}`);
    ({ lines } = await bench.run());
  } catch (error) {
    failed++;
    if (title === file) console.log(`\n## ${title}`);
    lines = [`FAILED: ${error instanceof Error ? error.message : String(error)}`];
  }
  for (const line of lines) console.log(line);
  sections.push({ file, title, lines, seconds: (performance.now() - t0) / 1000 });
}

if (only === undefined) {
  const doc = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` (bench/run.js) on ${started.toISOString()} at commit ${commit()}; ` +
      `${sections.length} benchmark files, ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s. ` +
      'Every figure stands beside a baseline measured in the same run on the same machine: read the ratios; ' +
      'absolute numbers only mean something next to the machine line. How each bench works and how to read ' +
      'it: [README.md](README.md). Nothing here is asserted; goals are printed as met or MISSED.',
    '',
    ...header.map((l) => `- ${l}`),
    '',
  ];
  for (const s of sections) {
    doc.push(`## ${s.title}`, '', `\`bench/${s.file}\`, ${s.seconds.toFixed(0)} s`, '');
    for (const line of s.lines) doc.push(`- ${line}`);
    doc.push('');
  }
  writeFileSync(new URL('RESULTS.md', here), doc.join('\n'));
  console.log('\nwritten: bench/RESULTS.md');
}
process.exitCode = failed > 0 ? 1 : 0;
