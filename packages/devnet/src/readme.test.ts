/**
 * The README's example is code, not prose: its ```ts block runs here against these sources, with its
 * `// …` result comments checked.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));
const readme = readFileSync(join(here, '../README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'devnet-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('runs the README example', async () => {
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  // The package name resolves to its built dist/; the test runs the sources instead.
  const program = `${block!.replace("'@l402/devnet'", JSON.stringify(join(here, 'index.js')))}
export const results = { proof: proof === invoice.paymentHash, fee: paid.feeMsat, state: merchant.lookupInvoice(invoice.paymentHash)?.state };`;
  expect(program).not.toContain('@l402/devnet');
  const file = join(dir, 'example.ts');
  writeFileSync(file, program);
  const { results } = await import(file);
  expect(results).toEqual({ proof: true, fee: 1000, state: 'settled' });
}, 30_000);
