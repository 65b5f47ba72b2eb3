/**
 * The README's TypeScript examples are code, not prose: each ```ts block runs here against the library,
 * with its `// …` result comments checked where they state a value.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = mkdtempSync(join(root, 'test', '.readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('has TypeScript examples', () => {
  expect(blocks.length).toBeGreaterThanOrEqual(2);
});

it('runs the token core, invoice and devnet examples as one program', async () => {
  // Blocks after the first reuse its imports, as a reader would paste them into one file.
  const program = `${blocks.join('\n')}
export const results = { lines, header, credentialOk: credential !== undefined, readOnly, invoice, expired: Invoice.isExpired(invoice), paid, settled };`;
  const file = join(dir, 'example.ts');
  writeFileSync(file, program);
  const { results } = await import(file);
  expect(results.lines).toHaveLength(2);
  expect(results.lines[0]).toMatch(/^LSAT macaroon="AgEEbHNhdAJC[^"]+", invoice="lnbcrt…"$/);
  expect(results.lines[1]).toMatch(/^L402 macaroon=/);
  expect(results.header).toMatch(/^L402 AgEEbHNhdAJC[A-Za-z0-9+/=]+:[0-9a-f]{64}$/);
  expect(results.invoice.amountMsat).toBe(250000000n);
  expect(results.invoice.description).toBe('1 cup coffee');
  expect(results.expired).toBe(true);
  expect(results.paid.preimage).toHaveLength(32);
  expect(results.settled.state).toBe('settled');
}, 60_000);
