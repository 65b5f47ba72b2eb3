/**
 * The devnet in a process of its own (as a real LND would be), so its nodes' event loops do not share
 * the gateway's. Answers with the LND URIs of the merchant (the gateway's wallet) and the payer.
 */
import { Devnet } from '@l402/devnet';
import { serve, settings } from './child.js';

const { home } = await settings();
const devnet = await Devnet.start({ home, publish: false });
const { merchant, payer } = devnet.document.nodes;
serve({ merchant: merchant.uris.lnd, payer: payer.uris.lnd }, () => devnet.close());
