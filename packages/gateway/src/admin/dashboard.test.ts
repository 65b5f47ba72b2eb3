/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), against a real gateway
 * on the devnet: it signs in with the one-time link, shows a payment made during the test, changes a
 * price (the next 402 asks the new price) and revokes a token (it is refused right after).
 */

import { existsSync } from 'node:fs';
import * as http from 'node:http';
import { Challenge, Invoice } from 'l402';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as Gateway from '../Gateway.js';
import * as Testing from '../testing.js';

const CHROMIUM = '/usr/bin/chromium';
const backend = http.createServer((request, response) => {
  request.resume();
  response.end('ok');
});
const world = Testing.useWorld({ name: 'l402-dashboard-', backend, graceMs: 200 });
let gateway: Gateway.Gateway;
let browser: Browser;
/** Requests the page sent anywhere but the gateway. */
const foreign: string[] = [];

beforeAll(async () => {
  const weather = `
  - name: weather
    pathregexp: '^/weather/'
    address: "${world.upstream}"
    price: 21
`;
  gateway = await world.start(
    world.config(weather, { extra: 'admin:\n  enabled: true\ndashboard:\n  enabled: true\n' }),
  );
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is needed (apt-get install chromium)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

async function challenge(path: string) {
  const unpaid = await fetch(`${gateway.url}${path}`);
  await unpaid.text();
  expect(unpaid.status).toBe(402);
  return unpaid.headers.get('www-authenticate');
}

describe('the dashboard in Chromium', () => {
  it('shows a payment, changes a price and revokes a token', async () => {
    const page = await browser.newPage();
    page.on('request', (request) => {
      if (!request.url().startsWith(gateway.url)) foreign.push(request.url());
    });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });

    // Signs in with the one-time link printed at start; the code is spent.
    await page.goto(gateway.admin!.dashboardUrl!);
    await page.locator('#app:not(.hidden)').waitFor();
    await page.locator('#live', { hasText: 'live' }).waitFor();
    expect(new URL(page.url()).hash).toBe('');
    const reuse = await fetch(`${gateway.url}/api/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: new URL(gateway.admin!.dashboardUrl!).hash.slice('#code='.length) }),
    });
    expect(reuse.status).toBe(401);
    await page.locator('input[data-service="weather"]').waitFor();
    expect(await page.locator('input[data-service="weather"]').inputValue()).toBe('21');

    // A real payment through the gateway appears: in the transactions, the tokens, the totals, the chart, the feed.
    const { offer, macaroon, authorization } = await world.pay(await challenge('/weather/today'));
    const paid = await fetch(`${gateway.url}/weather/today`, { headers: { authorization } });
    expect(paid.status).toBe(200);
    await paid.text();
    const paymentHash = Buffer.from(Invoice.decode(offer.invoice).paymentHash).toString('hex');
    // The challenge shows first, then (the paid request refreshes the page through the feed) the payment.
    await page.locator(`tr[data-payment="${paymentHash}"]`, { hasText: 'payment' }).waitFor();
    await page.locator('#revenue', { hasText: '21' }).waitFor();
    await page.locator('#payments', { hasText: '1' }).waitFor();
    await page.locator('#chart rect.bar[data-revenue="21"]').waitFor();
    await page.locator('#feed li', { hasText: 'GET /weather/today' }).first().waitFor();

    // Change the price: the next 402's invoice asks for it.
    await page.locator('input[data-service="weather"]').fill('34');
    await page.locator('button[data-save="weather"]').click();
    await page.locator('#status', { hasText: 'price of weather is now 34 sat' }).waitFor();
    const tomorrow = Challenge.l402(Challenge.parse(await challenge('/weather/tomorrow')))!;
    expect(Invoice.decode(tomorrow.invoice).amountMsat).toBe(34_000n);

    // Revoke the token bought above: refused at once.
    const tokenId = Buffer.from(macaroon.identifier.subarray(34, 66)).toString('hex');
    await page.locator(`button[data-revoke="${tokenId}"]`).click();
    await page.locator('#status', { hasText: 'revoked' }).waitFor();
    await page.locator(`tr[data-token="${tokenId}"]`, { hasText: 'revoked' }).waitFor();
    const refused = await fetch(`${gateway.url}/weather/today`, { headers: { authorization } });
    await refused.text();
    expect(refused.status).not.toBe(200);

    expect(problems, problems.join('\n')).toEqual([]);
    expect(foreign).toEqual([]);
    await page.close();
  }, 60_000);

  it('asks for the macaroon without a link, and refuses a wrong one', async () => {
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/dashboard`);
    await page.locator('#signin:not(.hidden)').waitFor();
    await page.locator('#macaroon').fill('0201'.repeat(20));
    await page.locator('#signin-form button').click();
    await page.locator('#signin-error', { hasText: 'refused' }).waitFor();
    await page.close();
  });
});
