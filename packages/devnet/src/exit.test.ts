import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The built package in a process of its own: only there does a leaked handle show, as a process that
// never exits.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const entry = join(root, 'packages/devnet/dist/index.js');

beforeAll(() => {
  // Incremental: a no-op when dist/ is current.
  try {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/devnet'], {
      cwd: root,
      stdio: 'pipe',
    });
  } catch (error) {
    throw new Error(`the package does not build:\n${(error as { stdout?: Buffer }).stdout ?? error}`);
  }
}, 120_000);

/** Runs `script` as an ES module that has `Network` imported from the built package. */
function run(script: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', `import { Network } from ${JSON.stringify(entry)};\n${script}`],
      { cwd: root, timeout: 20_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

const pay = `
const invoice = await net.node('merchant').createInvoice({ amountMsat: 1000 });
const paid = await net.node('payer').payInvoice(invoice.paymentRequest);
console.log(paid.state);
`;

describe('the process running a devnet', () => {
  it('exits right after close(), which releases the listening ports', async () => {
    const result = await run(`
      import { connect } from 'node:net';
      const net = await Network.start({
        nodes: ['merchant', 'payer'],
        channels: [{ from: 'payer', to: 'merchant', capacitySat: 100000 }],
        transport: 'tcp',
      });
      ${pay}
      const { port } = net.node('merchant').info().address;
      await net.close();
      // stdout and stderr are pipes to the test; anything else left would be the devnet's.
      const left = process.getActiveResourcesInfo().filter((resource) => resource !== 'PipeWrap');
      const refused = await new Promise((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.on('connect', () => resolve(socket.destroy() && false));
        socket.on('error', () => resolve(true));
      });
      console.log('port closed', refused, JSON.stringify(left));
    `);
    expect(result).toMatchObject({ code: 0, stdout: 'succeeded\nport closed true []\n', stderr: '' });
    expect(result.ms).toBeLessThan(10_000);
  }, 30_000);

  it('exits even when an idle network is never closed: nothing idle holds it open', async () => {
    const result = await run(`
      const net = await Network.start({
        nodes: ['merchant', 'payer'],
        channels: [{ from: 'payer', to: 'merchant', capacitySat: 100000 }],
      });
      ${pay}
    `);
    expect(result).toMatchObject({ code: 0, stdout: 'succeeded\n', stderr: '' });
    expect(result.ms).toBeLessThan(10_000);
  }, 30_000);
});
