/**
 * Devnet timings: network start, one payment, and sequential payments per second (each one a fresh
 * invoice paid end to end), in memory, over loopback TCP, and across one hop.
 *
 *   npx tsc -b packages/devnet && node packages/devnet/bench/payments.js [seconds per case, default 3]
 */
import os from 'node:os';
import { Network } from '../dist/index.js';

const seconds = Number(process.argv[2] ?? 3);
const ms = (start) => `${(performance.now() - start).toFixed(0)} ms`;

async function sequential(net, from, to) {
  const payer = net.node(from);
  const payee = net.node(to);
  let count = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    const invoice = await payee.createInvoice({ amountMsat: 1_000 });
    await payer.payInvoice(invoice.paymentRequest);
    count++;
  }
  return count / ((performance.now() - start) / 1000);
}

console.log(
  `machine: ${os.cpus()[0]?.model ?? 'unknown cpu'}, ${os.cpus().length} cores, Node ${process.version}`,
);
for (const transport of ['memory', 'tcp']) {
  let start = performance.now();
  const net = await Network.start({
    nodes: ['merchant', 'payer'],
    channels: [{ from: 'payer', to: 'merchant', capacitySat: 10_000_000 }],
    transport,
  });
  console.log(`${transport}: network start (2 nodes, 1 channel): ${ms(start)}`);
  const invoice = await net.node('merchant').createInvoice({ amountMsat: 1_000 });
  start = performance.now();
  await net.node('payer').payInvoice(invoice.paymentRequest);
  console.log(`${transport}: first payment: ${ms(start)}`);
  console.log(
    `${transport}: sequential payments: ${(await sequential(net, 'payer', 'merchant')).toFixed(1)}/s`,
  );
  await net.close();
}
const start = performance.now();
const line = await Network.line(['payer', 'hop', 'merchant'], { capacitySat: 10_000_000 });
console.log(`memory: network start (3-node line): ${ms(start)}`);
console.log(
  `memory: sequential payments over one hop: ${(await sequential(line, 'payer', 'merchant')).toFixed(1)}/s`,
);
await line.close();
