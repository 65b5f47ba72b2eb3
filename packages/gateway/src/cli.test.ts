/**
 * `l402 gateway` as users run it: the built binary in a child process (`npm start` is
 * `node packages/cli/bin/l402.js gateway`), on embedded defaults with its own devnet, with the
 * Aperture sample config, and killed with SIGKILL between a 402 and its payment.
 */
import { type ChildProcess, execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Devnet } from '@l402/devnet';
import { Challenge, Credential, Macaroon } from 'l402';
import { connect } from 'l402/lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The command under test is the CLI's: its harness builds and starts it.
import { ensureBuilt, type RunningGateway, root, startGateway } from '../../cli/src/testing.js';

const bin = join(root, 'packages/cli/bin/l402.js');
const SAMPLE = fileURLToPath(new URL('./fixtures/aperture-sample-conf.yaml', import.meta.url));
const homes: string[] = [];
const children: ChildProcess[] = [];

function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'l402-gateway-cli-'));
  homes.push(dir);
  return dir;
}

beforeAll(ensureBuilt, 120_000);

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of homes) rmSync(dir, { recursive: true, force: true });
});

function l402(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

type Running = RunningGateway;

/** Starts `l402 gateway --home <home> --listen 127.0.0.1:0` and waits for its banner. */
const gateway = (home: string): Promise<Running> => startGateway(home, children);

async function stop(running: Running): Promise<number | null> {
  running.child.kill('SIGTERM');
  const [code] = (await once(running.child, 'exit')) as [number | null];
  return code;
}

describe('l402 gateway --check', () => {
  it("accepts Aperture's sample config, printing what it ignores", () => {
    const r = l402('gateway', '--config', SAMPLE, '--check');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${SAMPLE}: valid (14 warnings)\n`);
    const warnings = r.stderr.trimEnd().split('\n');
    expect(warnings).toHaveLength(14);
    for (const line of warnings) expect(line).toMatch(/^l402: warning: .*aperture-sample-conf\.yaml:\d+: /);
    expect(r.stderr).toContain('config key hashmail is not supported by l402 and is ignored');
  });

  it('refuses a bad value with exit 2 and one line naming file, line and key', () => {
    const file = join(tempHome(), 'aperture.yaml');
    writeFileSync(
      file,
      'authenticator:\n  backend: devnet\nservices:\n  - name: api\n    address: "127.0.0.1:3000"\n    price: cheap\n',
    );
    const r = l402('gateway', '--config', file, '--check');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `l402: ${file}:6: services[0].price: expected a non-negative integer, got "cheap"\n`,
    );
  });
});

describe('l402 gateway on embedded defaults', () => {
  it('prints its demo URLs and a pay command that works against the devnet payer, and stops on SIGTERM', async () => {
    const home = tempHome();
    const running = await gateway(home);
    const { banner, url } = running;
    expect(banner).toContain(`store      sqlite ${join(home, 'gateway.db')}`);
    expect(banner).toContain(`devnet     ${join(home, 'devnet.json')}`);
    const free = await fetch(`${url}/free/hello`);
    expect(free.status).toBe(200);
    expect(await free.json()).toMatchObject({ service: 'free', path: '/free/hello' });
    expect((await fetch(`${url}/paid/hello`)).status).toBe(402);

    const command = banner
      .split('\n')
      .find((line) => line.trimStart().startsWith('node --input-type=module'));
    expect(command).toBeDefined();
    const paid = await promisify(execFile)('sh', ['-c', command!], { cwd: tmpdir() });
    expect(paid.stdout).toMatch(/^200 \{"service":"paid",.*"tokenId":"[0-9a-f]{64}"/);
    // The l402 command line the banner suggests pays too (`npx l402` is this repository's binary).
    const get = banner.split('\n').find((line) => line.includes(' npx l402 get '));
    expect(get).toBeDefined();
    const viaGet = await promisify(execFile)('sh', ['-c', get!.replace('npx l402', `node ${bin}`)], {
      cwd: tmpdir(),
    });
    expect(viaGet.stdout).toMatch(/^\{"service":"paid",.*"tokenId":"[0-9a-f]{64}"/);

    expect(await stop(running)).toBe(0);
    expect(existsSync(join(home, 'devnet.json'))).toBe(false);
  }, 30_000);

  it('loses nothing to kill -9 between a 402 and its payment', async () => {
    const home = tempHome();
    // A devnet outliving the gateway (as `l402 devnet` would): the restarted gateway joins it.
    const devnet = await Devnet.start({ home });
    const payer = await connect(devnet.document.nodes.payer!.uris.lnd);
    try {
      const first = await gateway(home);
      expect(first.banner).toContain(`lightning  devnet (process ${process.pid})`);
      const unpaid = await fetch(`${first.url}/paid/hello`);
      expect(unpaid.status).toBe(402);
      first.child.kill('SIGKILL');
      await once(first.child, 'exit');

      const second = await gateway(home);
      const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')))!;
      const { preimage } = await payer.pay(offer.invoice, { maxFeeMsat: 1_000n });
      const authorization = Credential.format({ macaroon: Macaroon.decode(offer.macaroon), preimage });
      const paid = await fetch(`${second.url}/paid/hello`, { headers: { authorization } });
      expect(paid.status).toBe(200);
      expect(await paid.json()).toMatchObject({ service: 'paid' });
      expect(await stop(second)).toBe(0);
    } finally {
      await payer.close();
      await devnet.close();
    }
  }, 30_000);
});
