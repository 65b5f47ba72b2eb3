import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources, never a stale dist/.
    alias: [
      { find: /^l402$/, replacement: `${src('l402')}index.ts` },
      { find: /^l402\/lightning$/, replacement: `${src('l402')}lightning/index.ts` },
      { find: /^l402\/client$/, replacement: `${src('l402')}client/index.ts` },
      { find: /^l402\/client\/node$/, replacement: `${src('l402')}client/node.ts` },
      { find: /^l402\/agent$/, replacement: `${src('l402')}agent/index.ts` },
      { find: /^l402\/agent\/(langchain|ai)$/, replacement: `${src('l402')}agent/$1.ts` },
      { find: /^l402\/stores\/(.*)$/, replacement: `${src('l402')}server/stores/$1.ts` },
      { find: /^l402\/mpp$/, replacement: `${src('l402')}mpp/index.ts` },
      { find: /^l402\/mpp\/server$/, replacement: `${src('l402')}mpp/Server.ts` },
      { find: /^l402\/server$/, replacement: `${src('l402')}server/index.ts` },
      { find: /^l402\/(node|express|fastify|hono)$/, replacement: `${src('l402')}server/adapters/$1.ts` },
      { find: /^@l402\/devnet$/, replacement: `${src('devnet')}index.ts` },
      { find: /^@l402\/gateway$/, replacement: `${src('gateway')}index.ts` },
      { find: /^#platform$/, replacement: `${src('l402')}internal/platform.node.ts` },
    ],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', './scripts/summary-reporter.ts'],
    testTimeout: 30_000,
  },
});
