/**
 * Buys one request from an example server with the devnet payer's wallet: asks, pays the invoice in the
 * 402, then asks again with the token (narrowed first by each `--caveat`, as any holder may) and prints
 * both answers.
 *
 *   node examples/pay.js http://127.0.0.1:3001/paid
 *   node examples/pay.js http://127.0.0.1:3001/notes --method POST --caveat notes_capabilities=read
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Challenge, Credential, Invoice, Macaroon } from 'l402';
import { connect } from 'l402/lightning';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    method: { type: 'string', default: 'GET' },
    caveat: { type: 'string', multiple: true, default: [] },
  },
});
const [url] = positionals;
if (url === undefined) {
  console.error('usage: node examples/pay.js <url> [--method POST] [--caveat key=value]…');
  process.exit(2);
}

const unpaid = await fetch(url, { method: values.method });
if (unpaid.status !== 402) {
  console.log(unpaid.status, (await unpaid.text()).trim());
  process.exit(0);
}
const offer = Challenge.l402(Challenge.parse(unpaid.headers.get('www-authenticate')));
console.log(`402: pay ${Invoice.decode(offer.invoice).amountMsat / 1000n} sat`);
const devnet = join(process.env.L402_HOME ?? join(homedir(), '.l402'), 'devnet.json');
const wallet = await connect(JSON.parse(readFileSync(devnet, 'utf8')).nodes.payer.uris.lnd);
const { preimage } = await wallet.pay(offer.invoice, { maxFeeMsat: 1_000n });
await wallet.close();

const macaroon = Macaroon.addFirstPartyCaveat(Macaroon.decode(offer.macaroon), ...values.caveat);
const authorization = Credential.format({ macaroon, preimage });
const paid = await fetch(url, { method: values.method, headers: { authorization } });
const narrowed = values.caveat.length > 0 ? ` (token narrowed by ${values.caveat.join(', ')})` : '';
console.log(`${paid.status}${narrowed}`, (await paid.text()).trim());
process.exitCode = paid.ok ? 0 : 1;
