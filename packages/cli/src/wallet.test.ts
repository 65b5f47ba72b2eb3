/**
 * `l402 wallet`, `l402 budget` and the settings (config.yaml, `L402_*`, flags), through the built
 * binary: real invoices and payments between the devnet's merchant and payer, budgets that refuse a
 * payment, and which source wins.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as Config from './config.js';
import { clientHome, l402, useWorld } from './testing.js';

const world = useWorld();

describe('l402 wallet', () => {
  it('invoice on one node, pay from the other, balances move', async () => {
    const home = clientHome(world.devnet);
    const merchant = ['--wallet', 'devnet:merchant'];
    const before = JSON.parse((await l402(['wallet', 'balance', '--json', ...merchant], { home })).stdout);
    const payerBefore = JSON.parse((await l402(['wallet', 'balance', '--json'], { home })).stdout);
    expect(payerBefore.spendableSats).toBeGreaterThan(1000);

    const invoice = await l402(['wallet', 'invoice', '1234', '--memo', 'cli test', '--json', ...merchant], {
      home,
    });
    expect(invoice.code).toBe(0);
    const { paymentRequest, paymentHash } = JSON.parse(invoice.stdout);
    expect(paymentRequest).toMatch(/^lnbcrt12340n1/);

    const paid = await l402(['wallet', 'pay', paymentRequest, '--json'], { home });
    expect(paid.code).toBe(0);
    expect(JSON.parse(paid.stdout)).toMatchObject({ paymentHash, amountSats: 1234 });

    const after = JSON.parse((await l402(['wallet', 'balance', '--json', ...merchant], { home })).stdout);
    expect(after.spendableSats).toBe(before.spendableSats + 1234);
    const payerAfter = JSON.parse(
      (await l402(['wallet', 'balance'], { home })).stdout.match(/\d+/)?.[0] ?? 'null',
    );
    expect(payerAfter).toBeLessThanOrEqual(payerBefore.spendableSats - 1234);

    // Paying it again is not a second payment: the wallet knows the hash.
    const again = await l402(['wallet', 'pay', paymentRequest, '--json'], { home });
    const merchantFinal = JSON.parse(
      (await l402(['wallet', 'balance', '--json', ...merchant], { home })).stdout,
    );
    expect(again.code === 0 || again.code === 5).toBe(true);
    expect(merchantFinal.spendableSats).toBe(after.spendableSats);
  }, 90_000);

  it('a payment the wallet cannot make exits 5', async () => {
    const home = clientHome(world.devnet);
    const invoice = await l402(['wallet', 'invoice', '1000', '--json'], { home }); // to the payer
    const { paymentRequest } = JSON.parse(invoice.stdout);
    // The merchant has no outbound liquidity: the payer funded the only channel.
    const r = await l402(['wallet', 'pay', paymentRequest, '--wallet', 'devnet:merchant'], { home });
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^l402: payment failed: /);
  }, 60_000);

  it('no devnet and no wallet configured: exit 2 saying how to set one', async () => {
    const home = clientHome();
    const r = await l402(['wallet', 'balance'], { home });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/devnet/);
  }, 30_000);
});

describe('l402 budget', () => {
  it('set then refused: a per-request limit below the price exits 4; the spent sums show', async () => {
    const home = clientHome(world.devnet);
    const set = await l402(['budget', 'set', '--per-request', '20', '--per-day', '1000'], { home });
    expect(set).toMatchObject({ code: 0 });
    expect(JSON.parse(set.stdout)).toEqual({ perRequestSats: 20, perDaySats: 1000 });

    const refused = await l402(['get', `${world.url}/paid`], { home });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/21/);

    expect((await l402(['budget', 'set', '--per-request', 'none'], { home })).code).toBe(0);
    expect((await l402(['get', `${world.url}/paid`, '-s'], { home })).code).toBe(0);
    const shown = JSON.parse((await l402(['budget', 'show', '--json'], { home })).stdout);
    expect(shown).toMatchObject({
      limits: { perDaySats: 1000 },
      spent: { lastHourSats: 21, lastDaySats: 21, totalSats: 21 },
    });
    expect(shown.limits.perRequestSats).toBeUndefined();

    // The day's limit, nearly used up by the next purchase, refuses the one after.
    expect((await l402(['budget', 'set', '--per-day', '30'], { home })).code).toBe(0);
    const over = await l402(['get', `${world.url}/notes`], { home });
    expect(over.code).toBe(4);
    expect((await l402(['budget', 'set'], { home })).code).toBe(2);
  }, 90_000);
});

describe('settings: flags over L402_* over config.yaml', () => {
  it('max cost from each source, the stronger one deciding', async () => {
    const home = clientHome(world.devnet, { 'config.yaml': 'maxCostSats: 5\n' });
    const url = `${world.url}/paid`;
    expect((await l402(['get', url, '-s'], { home })).code).toBe(4); // file: 5 < 21
    expect((await l402(['get', url, '-s'], { home, env: { L402_MAX_COST_SATS: '100' } })).code).toBe(0); // env wins
    const other = clientHome(world.devnet, { 'config.yaml': 'maxCostSats: 100\n' });
    expect((await l402(['get', url, '-s'], { home: other, env: { L402_MAX_COST_SATS: '5' } })).code).toBe(4);
    expect(
      (await l402(['get', url, '-s', '--max-cost', '50'], { home: other, env: { L402_MAX_COST_SATS: '5' } }))
        .code,
    ).toBe(0); // flag wins
  }, 90_000);

  it('wallet from config.yaml and budget from the environment', async () => {
    const home = clientHome(undefined, {
      'config.yaml': `wallet: ${world.devnet.document.nodes.payer?.uris.cln}\nbudget:\n  perRequestSats: 5\n`,
    });
    // No devnet.json in this home: the wallet comes from the file. The file's budget refuses 21 sat…
    const refused = await l402(['get', `${world.url}/paid`], { home });
    expect(refused.code).toBe(4);
    // …and the file, with a wallet secret in it, is readable by others: said, not fatal.
    expect(refused.stderr).toMatch(/^l402: warning: .*config\.yaml holds wallet credentials .*chmod 600/);
    chmodSync(join(home, 'config.yaml'), 0o600);
    expect((await l402(['get', `${world.url}/paid`], { home })).stderr).not.toMatch(/warning/);
    // …the environment's allows it, and the config.yaml wallet pays.
    const r = await l402(['get', `${world.url}/paid`, '--json'], {
      home,
      env: { L402_BUDGET_PER_REQUEST_SATS: '50' },
    });
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 200, paid: true, amountSats: 21 });
  }, 90_000);

  it('config show: each value with its source, wallet secrets hidden', async () => {
    const home = clientHome(undefined, {
      'config.yaml':
        'wallet: lnd://node:8080?macaroon=0201abcdef\nmaxFeeSats: 4\nbudget:\n  perDaySats: 900\n',
    });
    const r = await l402(['config', 'show', '--json'], { home, env: { L402_MAX_FEE_SATS: '9' } });
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({
      wallets: ['lnd://node:8080?…'],
      maxFeeSats: 9,
      budget: { perDaySats: 900 },
      sources: { wallet: 'file', maxFeeSats: 'env', 'budget.perDaySats': 'file', maxCostSats: 'default' },
    });
    expect(r.stdout).not.toContain('0201abcdef');
  }, 30_000);

  it('Config.load: precedence, sources, and refusals that name the place', () => {
    const home = clientHome(undefined, {
      'config.yaml': 'wallet: [lnd://a?macaroon=1, cln://b?rune=2]\nmaxFeeSats: 3\nallowInsecureHttp: true\n',
    });
    const s = Config.load({ maxFeeSats: 7 }, { L402_HOME: home, L402_WALLET: 'phoenixd://c?password=x' });
    expect(s).toMatchObject({
      home,
      wallets: ['phoenixd://c?password=x'],
      maxFeeSats: 7,
      allowInsecureHttp: true,
      sources: { wallet: 'env', maxFeeSats: 'flag', allowInsecureHttp: 'file', maxCostSats: 'default' },
    });
    expect(Config.load({}, { L402_HOME: home }).wallets).toEqual(['lnd://a?macaroon=1', 'cln://b?rune=2']);
    expect(() => Config.load({}, { L402_HOME: home, L402_MAX_COST_SATS: '1.5' })).toThrow(
      'L402_MAX_COST_SATS must be a whole number of satoshis, got "1.5"',
    );
    writeFileSync(join(home, 'config.yaml'), 'maxCost: 3\n');
    expect(() => Config.load({}, { L402_HOME: home })).toThrow(/config\.yaml: .*unknown key maxCost/);
    expect(Config.redact('lnd://127.0.0.1:8080?macaroon=abcd&cert=/x')).toBe('lnd://127.0.0.1:8080?…');
    expect(Config.redact('nostr+walletconnect://ab12?relay=wss://r&secret=ff')).toBe(
      'nostr+walletconnect://ab12?…',
    );
  });
});
