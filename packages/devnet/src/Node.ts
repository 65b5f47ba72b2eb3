/**
 * One Lightning node: LDK's ChannelManager, ChainMonitor, KeysManager (from a seed), router, scorer,
 * gossip (P2PGossipSync over a NetworkGraph) and PeerManager, driven by its own event loop, behind an
 * API shaped for the wallet facades: invoices with their state, payments with theirs, channels,
 * balances, node info. Nothing outside this module touches LDK.
 *
 * Reads (`info`, `lookupInvoice`, `listChannels`, `balance`, …) are synchronous snapshots; anything
 * that creates, pays, connects or waits returns a promise.
 *
 * @example
 * const chain = Chain.create();
 * const alice = await Node.create({ chain, alias: 'alice' });
 * const bob = await Node.create({ chain, alias: 'bob' });
 * await alice.connect(bob);
 * await alice.openChannel({ peer: bob.nodeId, capacitySat: 1_000_000 });
 * chain.mine(6);
 * // …once alice.listChannels()[0].usable:
 * const invoice = await bob.createInvoice({ amountMsat: 21_000, description: 'coffee' });
 * const paid = await alice.payInvoice(invoice.paymentRequest);
 * paid.preimage; // hex; sha256 of it is invoice.paymentHash
 * await Promise.all([alice.close(), bob.close()]);
 */
import { randomBytes } from 'node:crypto';
import { type AddressInfo, createServer, connect as dial, type Server, type Socket } from 'node:net';
import * as ldk from 'lightningdevkit';
import type { Block, Chain } from './Chain.js';
import {
  ArgumentError,
  ChannelError,
  ClosedError,
  InvoiceError,
  NotFoundError,
  type PaymentCode,
  PaymentError,
  PeerError,
  TimeoutError,
} from './Errors.js';
import { fromHex, sha256, toHex, toReversedHex } from './internal/bytes.js';
import { Connection, memoryPair, tcpWire, type Wire } from './internal/connection.js';
import { redate } from './internal/invoice.js';
import { load } from './internal/ldk.js';
import * as Transaction from './internal/transaction.js';
import { type Deferred, deferred, timeLimit, until } from './internal/wait.js';

/** LDK's log levels, least severe first. */
export type LogLevel = 'gossip' | 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Receives LDK's log lines at or above the node's `logLevel`. */
export type Logger = (level: LogLevel, message: string) => void;

/** What {@link create} needs: the chain, and optionally identity, clock and logging. */
export interface Options {
  /** The chain the node follows and broadcasts to. */
  readonly chain: Chain;
  /** Up to 32 bytes of UTF-8; defaults to the first bytes of the node id. */
  readonly alias?: string;
  /** 32 bytes the node's keys derive from, node id included. Random when omitted. */
  readonly seed?: Uint8Array;
  /** Wall clock in unix milliseconds, for invoice timestamps and expiry. Defaults to `Date.now`. */
  readonly now?: () => number;
  readonly logger?: Logger;
  /** Defaults to `'info'`. */
  readonly logLevel?: LogLevel;
}

/** Where a node accepts BOLT 8 connections over TCP. */
export interface PeerAddress {
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
}

/** The node at a glance, as LND's GetInfo and friends report it. */
export interface Info {
  readonly nodeId: string;
  readonly alias: string;
  readonly network: 'regtest';
  /** The newest block this node has processed. */
  readonly blockHeight: number;
  readonly blockHash: string;
  /** Header time of that block, unix seconds. */
  readonly blockTime: number;
  readonly peers: number;
  /** active = usable now; inactive = open but the peer is offline; pending = not yet confirmed. */
  readonly channels: { readonly active: number; readonly inactive: number; readonly pending: number };
  /** Set once {@link Node.listen} has been called. */
  readonly address: PeerAddress | undefined;
}

/** A channel as one of its two ends sees it. */
export interface Channel {
  readonly channelId: string;
  /** The other end's node id. */
  readonly peer: string;
  readonly capacitySat: number;
  /** Ours, excluding HTLCs in flight. */
  readonly localBalanceMsat: number;
  /** Theirs, excluding HTLCs in flight. */
  readonly remoteBalanceMsat: number;
  /** Outgoing HTLCs not yet resolved. */
  readonly unsettledLocalMsat: number;
  /** Incoming HTLCs not yet resolved. */
  readonly unsettledRemoteMsat: number;
  /** The largest HTLC we could send over it right now (balance less reserve and fees). */
  readonly spendableMsat: number;
  /** How much more we could receive over it. */
  readonly receivableMsat: number;
  /** Confirmed, and the peer is connected: payments can use it. */
  readonly usable: boolean;
  /** Confirmed deep enough and `channel_ready` exchanged. */
  readonly ready: boolean;
  /** Announced to the network through gossip. */
  readonly public: boolean;
  /** We opened (and funded) it. */
  readonly initiator: boolean;
  /**
   * What the peer charges to forward to us over this channel, from its `channel_update`: until it
   * arrives, our invoices cannot carry a route hint through this channel.
   */
  readonly peerFees: PeerFees | undefined;
  /** `block x tx x output`, once the funding transaction confirmed. */
  readonly shortChannelId: string | undefined;
  readonly fundingTxid: string | undefined;
  readonly fundingOutput: number | undefined;
  readonly confirmations: number | undefined;
}

/** A peer's forwarding terms for one channel, from its `channel_update`. */
export interface PeerFees {
  readonly baseMsat: number;
  readonly proportionalMillionths: number;
  readonly cltvExpiryDelta: number;
}

/** A channel whose funding transaction is in the mempool. */
export interface PendingChannel {
  readonly channelId: string;
  readonly peer: string;
  readonly fundingTxid: string;
  readonly fundingOutput: number;
}

/** Sums over channels, as LND's ChannelBalance reports them. */
export interface Balance {
  /** Our side of ready channels, excluding HTLCs in flight. */
  readonly localMsat: number;
  readonly remoteMsat: number;
  readonly unsettledLocalMsat: number;
  readonly unsettledRemoteMsat: number;
  /** Our side of channels still waiting for confirmations. */
  readonly pendingOpenLocalMsat: number;
  readonly pendingOpenRemoteMsat: number;
}

/** open → settled when paid, → expired when its time runs out, → canceled by {@link Node.cancelInvoice}. */
export type InvoiceState = 'open' | 'settled' | 'expired' | 'canceled';

/** An invoice this node issued. */
export interface Invoice {
  readonly paymentHash: string;
  readonly paymentRequest: string;
  /** Known from creation: the node made it (or was given it). */
  readonly preimage: string;
  /** Requested amount; undefined for an any-amount invoice. */
  readonly amountMsat: number | undefined;
  readonly description: string | undefined;
  readonly descriptionHash: string | undefined;
  /** Unix seconds, as in the invoice. */
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly state: InvoiceState;
  /** What the payer actually paid; 0 until settled. */
  readonly receivedMsat: number;
  readonly settledAt: number | undefined;
  /** 1, 2, 3… in creation order (LND's add_index). */
  readonly addIndex: number;
  /** 1, 2, 3… in settlement order (LND's settle_index); undefined until settled. */
  readonly settleIndex: number | undefined;
}

/** What {@link Node.createInvoice} takes; every field is optional. */
export interface CreateInvoiceOptions {
  /** Omit (or 0) for an invoice the payer chooses the amount of. */
  readonly amountMsat?: number;
  readonly description?: string;
  /** 32 bytes of hex, instead of `description`. */
  readonly descriptionHash?: string;
  /** Defaults to 3600. */
  readonly expirySeconds?: number;
  /** 32 bytes of hex to use as the preimage; the node picks one when omitted. */
  readonly preimage?: string;
}

/** in-flight until LDK reports the preimage (succeeded) or gives up (failed). */
export type PaymentState = 'in-flight' | 'succeeded' | 'failed';

/** A payment this node sent (or tried to). */
export interface Payment {
  readonly paymentHash: string;
  readonly paymentRequest: string;
  /** The payee's node id. */
  readonly destination: string;
  /** Delivered to the payee, fees excluded. */
  readonly amountMsat: number;
  readonly state: PaymentState;
  /** Unix seconds. */
  readonly createdAt: number;
  /** 1, 2, 3… in the order payments were started. */
  readonly index: number;
  readonly preimage: string | undefined;
  /** Routing fees paid; set once succeeded. */
  readonly feeMsat: number | undefined;
  readonly settledAt: number | undefined;
  readonly failure: { readonly code: PaymentCode; readonly message: string } | undefined;
}

/** What {@link Node.payInvoice} resolves with. */
export type SucceededPayment = Payment & {
  readonly state: 'succeeded';
  readonly preimage: string;
  readonly feeMsat: number;
  readonly settledAt: number;
};

/** What {@link Node.payInvoice} takes besides the invoice. */
export interface PayOptions {
  /** Required for an any-amount invoice; must match the invoice's amount otherwise. */
  readonly amountMsat?: number;
  /** Total routing fee limit. LDK's default when omitted: 1% + 50 sat. */
  readonly maxFeeMsat?: number;
  /** Defaults to 60 000. After it, the payment is abandoned (it may still complete if already delivered). */
  readonly timeoutMs?: number;
}

/** One direction of a channel in the gossip graph: the policy of the node it leaves from. */
export interface Policy {
  readonly feeBaseMsat: number;
  readonly feeProportionalMillionths: number;
  readonly cltvExpiryDelta: number;
  readonly htlcMinimumMsat: number;
  readonly htlcMaximumMsat: number;
  readonly enabled: boolean;
  /** Unix seconds. */
  readonly lastUpdate: number;
}

/** A public channel in the gossip graph; node1 is the lesser node id, as BOLT 7 orders them. */
export interface GraphChannel {
  readonly shortChannelId: string;
  readonly capacitySat: number | undefined;
  readonly node1: string;
  readonly node2: string;
  readonly node1Policy: Policy | undefined;
  readonly node2Policy: Policy | undefined;
}

/** The public network as this node learned it from gossip. */
export interface Graph {
  readonly nodes: readonly string[];
  readonly channels: readonly GraphChannel[];
}

const NETWORK = ldk.Network.LDKNetwork_Regtest;
const FEE_RATE_SAT_PER_KW = 253; // the floor every implementation accepts
const DEFAULT_EXPIRY_SECONDS = 3600;
const PAYMENT_RETRIES = 3;
const LOOP_MS = 100;
const PEER_TIMER_LOOPS = 100; // LDK asks for PeerManager ticks about every 10 s…
const MANAGER_TIMER_LOOPS = 600; // …and ChannelManager ticks about every minute.
const LEVELS: readonly LogLevel[] = ['gossip', 'trace', 'debug', 'info', 'warn', 'error'];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function config(announce: boolean): ldk.UserConfig {
  const config = ldk.UserConfig.constructor_default();
  const handshake = config.get_channel_handshake_config();
  // LDK lets only 10% of a channel be in flight by default; a devnet should be able to spend a whole
  // channel in one payment.
  handshake.set_max_inbound_htlc_value_in_flight_percent_of_channel(100);
  handshake.set_announce_for_forwarding(announce);
  config.set_channel_handshake_config(handshake);
  // Accept public and private channels alike, whatever this node's own default is.
  const limits = config.get_channel_handshake_limits();
  limits.set_force_announced_channel_preference(false);
  config.set_channel_handshake_limits(limits);
  // The last hop of a route hint is a private channel: forwarding into one must be allowed.
  config.set_accept_forwards_to_priv_channels(true);
  return config;
}

function amount(value: number, what: string, minimum = 0): number {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new ArgumentError(`${what} must be a whole number ≥ ${minimum}`);
  }
  return value;
}

const some = (option: ldk.Option_u64Z | ldk.Option_u32Z): number | undefined =>
  option instanceof ldk.Option_u64Z_Some || option instanceof ldk.Option_u32Z_Some
    ? Number(option.some)
    : undefined;

/** The variant name of an LDK enum value, without its `LDKType_` prefix. */
function variant(names: Record<number, string>, value: number): string {
  return (names[value] ?? String(value)).replace(/^LDK[A-Za-z]+_/, '');
}

function shortChannelId(scid: bigint): string {
  return `${scid >> 40n}x${(scid >> 16n) & 0xffffffn}x${scid & 0xffffn}`;
}

/** The human-readable text LDK puts in its error values, whatever their variant. */
function describe(error: unknown): string {
  if (error && typeof error === 'object') {
    if ('err' in error && typeof error.err === 'string') return error.err;
    if ('to_str' in error && typeof error.to_str === 'function') return String(error.to_str());
    return error.constructor.name.replace(/^[A-Za-z]+_/, '');
  }
  return String(error);
}

/**
 * The bindings return an absent optional struct as an object over a null pointer (their `ptr` field,
 * typed protected), never as null; this turns that into undefined.
 */
function present<T extends object>(value: T | null): T | undefined {
  return value && (value as unknown as { ptr: bigint }).ptr !== 0n ? value : undefined;
}

function policy(direction: ldk.ChannelUpdateInfo | null): Policy | undefined {
  const info = present(direction);
  if (!info) return undefined;
  const fees = info.get_fees();
  return {
    feeBaseMsat: fees.get_base_msat(),
    feeProportionalMillionths: fees.get_proportional_millionths(),
    cltvExpiryDelta: info.get_cltv_expiry_delta(),
    htlcMinimumMsat: Number(info.get_htlc_minimum_msat()),
    htlcMaximumMsat: Number(info.get_htlc_maximum_msat()),
    enabled: Boolean(info.get_enabled()),
    lastUpdate: info.get_last_update(),
  };
}

// The bindings' boolean getters return the WebAssembly i32 (0 or 1), not a JavaScript boolean.
function channelOf(details: ldk.ChannelDetails): Channel {
  const capacitySat = Number(details.get_channel_value_satoshis());
  const capacityMsat = capacitySat * 1000;
  const outbound = Number(details.get_outbound_capacity_msat());
  const inbound = Number(details.get_inbound_capacity_msat());
  const unsettledLocalMsat = details
    .get_pending_outbound_htlcs()
    .reduce((n, h) => n + Number(h.get_amount_msat()), 0);
  const unsettledRemoteMsat = details
    .get_pending_inbound_htlcs()
    .reduce((n, h) => n + Number(h.get_amount_msat()), 0);
  const ourReserveMsat = (some(details.get_unspendable_punishment_reserve()) ?? 0) * 1000;
  const theirReserveMsat = Number(details.get_counterparty().get_unspendable_punishment_reserve()) * 1000;
  // LDK reports only what each side can move above its reserve (clipped at zero). Whichever of the two
  // figures is not clipped gives our settled balance exactly: see get_available_balances in channel.rs.
  const localBalanceMsat =
    outbound > 0 || inbound === 0
      ? outbound + ourReserveMsat
      : capacityMsat - inbound - unsettledRemoteMsat - theirReserveMsat - unsettledLocalMsat;
  const forwarding = present(details.get_counterparty().get_forwarding_info());
  const funding = present(details.get_funding_txo());
  const scid = details.get_short_channel_id();
  return {
    channelId: toHex(details.get_channel_id().get_a()),
    peer: toHex(details.get_counterparty().get_node_id()),
    capacitySat,
    localBalanceMsat,
    remoteBalanceMsat: capacityMsat - localBalanceMsat - unsettledLocalMsat - unsettledRemoteMsat,
    unsettledLocalMsat,
    unsettledRemoteMsat,
    spendableMsat: Number(details.get_next_outbound_htlc_limit_msat()),
    receivableMsat: inbound,
    usable: Boolean(details.get_is_usable()),
    ready: Boolean(details.get_is_channel_ready()),
    public: Boolean(details.get_is_announced()),
    initiator: Boolean(details.get_is_outbound()),
    peerFees: forwarding
      ? {
          baseMsat: forwarding.get_fee_base_msat(),
          proportionalMillionths: forwarding.get_fee_proportional_millionths(),
          cltvExpiryDelta: forwarding.get_cltv_expiry_delta(),
        }
      : undefined,
    shortChannelId: scid instanceof ldk.Option_u64Z_Some ? shortChannelId(scid.some) : undefined,
    fundingTxid: funding ? toReversedHex(funding.get_txid()) : undefined,
    fundingOutput: funding ? funding.get_index() : undefined,
    confirmations: some(details.get_confirmations()),
  };
}

/** A Lightning node on the devnet. Create one with {@link create}. */
export class Node {
  readonly nodeId: string;
  readonly alias: string;
  readonly chain: Chain;

  private readonly id: Uint8Array;
  private readonly now: () => number;
  private readonly logger: Logger | undefined;
  private readonly logRank: number;
  private readonly keys: ldk.KeysManager;
  private readonly manager: ldk.ChannelManager;
  private readonly monitor: ldk.ChainMonitor;
  private readonly peerManager: ldk.PeerManager;
  private readonly networkGraph: ldk.NetworkGraph;
  private readonly confirmables: readonly (() => ldk.Confirm)[];
  private readonly eventSources: readonly ldk.EventsProvider[];
  private readonly eventHandler: ldk.EventHandler;
  private readonly queuedEvents: ldk.Event[] = [];

  private readonly invoices = new Map<string, Mutable<Invoice>>();
  private readonly openInvoices = new Set<string>();
  private readonly payments = new Map<string, Mutable<Payment>>();
  /** Payment hash → LDK payment id (hex) of its current attempt. */
  private readonly attempts = new Map<string, string>();
  /** Payment hash → the payInvoice call waiting on it. */
  private readonly paying = new Map<string, Deferred<SucceededPayment>>();
  /**
   * Channel id (hex) → the openChannel call waiting on it: under the temporary id, and once funded also
   * under the real one. (Not user_channel_id: the bindings return that u128 byte-reversed.)
   */
  private readonly opening = new Map<string, Deferred<PendingChannel>>();
  private readonly operations = new Set<Deferred<unknown>>();
  private readonly invoiceListeners = new Set<(invoice: Invoice) => void>();
  private readonly paymentListeners = new Set<(payment: Payment) => void>();
  private readonly connections = new Set<Connection>();

  private tip: Block;
  /** LDK's own clock (`highest_seen_timestamp`): its start time, then the newest block time seen. */
  private ldkTime: number;
  private nextExpiryMs = Number.POSITIVE_INFINITY;
  private addIndex = 0;
  private settleIndex = 0;
  private paymentIndex = 0;
  private loops = 0;
  private forwardsDue = false;
  private scheduled: NodeJS.Immediate | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private server: Server | undefined;
  private listening: PeerAddress | undefined;
  private listenCall: Promise<PeerAddress> | undefined;
  private closed = false;

  private constructor(options: Options) {
    const { chain } = options;
    this.chain = chain;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.logRank = LEVELS.indexOf(options.logLevel ?? 'info');
    if (this.logRank < 0) throw new ArgumentError(`logLevel must be one of ${LEVELS.join(', ')}`);
    const seed = options.seed ?? new Uint8Array(randomBytes(32));
    if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new ArgumentError('seed must be 32 bytes');
    const startMs = this.now();
    const startSec = Math.floor(startMs / 1000);

    const logger = ldk.Logger.new_impl({ log: (record: ldk.Record) => this.log(record) });
    const fees = ldk.FeeEstimator.new_impl({ get_est_sat_per_1000_weight: () => FEE_RATE_SAT_PER_KW });
    const broadcaster = ldk.BroadcasterInterface.new_impl({
      broadcast_transactions: (txs: Uint8Array[]) => {
        for (const tx of txs) chain.broadcast(tx);
      },
    });
    // Nothing is persisted: a devnet node lives as long as its process.
    const completed = ldk.ChannelMonitorUpdateStatus.LDKChannelMonitorUpdateStatus_Completed;
    const persister = ldk.Persist.new_impl({
      persist_new_channel: () => completed,
      update_persisted_channel: () => completed,
      archive_persisted_channel: () => {},
    });
    this.monitor = ldk.ChainMonitor.constructor_new(
      ldk.Option_FilterZ.constructor_none(),
      broadcaster,
      logger,
      fees,
      persister,
    );
    this.keys = ldk.KeysManager.constructor_new(seed, BigInt(startSec), (startMs % 1000) * 1_000_000);
    const entropy = this.keys.as_EntropySource();
    this.networkGraph = ldk.NetworkGraph.constructor_new(NETWORK, logger);
    const scorer = ldk.ProbabilisticScorer.constructor_new(
      ldk.ProbabilisticScoringDecayParameters.constructor_default(),
      this.networkGraph,
      logger,
    );
    const router = ldk.DefaultRouter.constructor_new(
      this.networkGraph,
      logger,
      entropy,
      ldk.MultiThreadedLockableScore.constructor_new(scorer.as_Score()).as_LockableScore(),
      ldk.ProbabilisticScoringFeeParameters.constructor_default(),
    );
    this.tip = chain.tip;
    this.ldkTime = startSec;
    this.manager = ldk.ChannelManager.constructor_new(
      fees,
      this.monitor.as_Watch(),
      broadcaster,
      router.as_Router(),
      ldk.DefaultMessageRouter.constructor_new(this.networkGraph, entropy).as_MessageRouter(),
      logger,
      entropy,
      this.keys.as_NodeSigner(),
      this.keys.as_SignerProvider(),
      config(false),
      ldk.ChainParameters.constructor_new(
        NETWORK,
        ldk.BestBlock.constructor_new(this.tip.hash, this.tip.height),
      ),
      startSec,
    );
    // Real gossip: announced channels reach every connected node's graph, so any topology routes.
    const gossip = ldk.P2PGossipSync.constructor_new(
      this.networkGraph,
      ldk.Option_UtxoLookupZ.constructor_none(),
      logger,
    );
    const ignoring = ldk.IgnoringMessageHandler.constructor_new();
    this.peerManager = ldk.PeerManager.constructor_new(
      this.manager.as_ChannelMessageHandler(),
      gossip.as_RoutingMessageHandler(),
      ignoring.as_OnionMessageHandler(),
      ignoring.as_CustomMessageHandler(),
      startSec,
      entropy.get_secure_random_bytes(),
      logger,
      this.keys.as_NodeSigner(),
    );
    this.id = this.manager.get_our_node_id();
    this.nodeId = toHex(this.id);
    this.alias = options.alias ?? this.nodeId.slice(0, 20);
    if (Buffer.byteLength(this.alias) > 32)
      throw new ArgumentError('alias must be at most 32 bytes of UTF-8');

    this.confirmables = [() => this.manager.as_Confirm(), () => this.monitor.as_Confirm()];
    this.eventSources = [this.manager.as_EventsProvider(), this.monitor.as_EventsProvider()];
    this.eventHandler = ldk.EventHandler.new_impl({
      handle_event: (event: ldk.Event) => {
        this.queuedEvents.push(event);
        return ldk.Result_NoneReplayEventZ.constructor_ok();
      },
    });
    this.unsubscribe = chain.subscribe((block) => this.connectBlock(block));
    this.timer = setInterval(() => this.loop(), LOOP_MS);
    // An idle devnet must not keep the process alive; every pending call holds its own timer.
    this.timer.unref();
  }

  /**
   * A new node following `options.chain`, with no peers and no channels.
   *
   * @example
   * const node = await Node.Node.create({ chain, alias: 'merchant' });
   */
  static async create(options: Options): Promise<Node> {
    await load();
    return new Node(options);
  }

  /** The TCP address set by {@link listen}, if any. */
  get address(): PeerAddress | undefined {
    return this.listening;
  }

  /**
   * Node id, alias, network, best block and channel counts.
   *
   * @example
   * node.info().blockHeight; // 107
   */
  info(): Info {
    const channels = this.manager.list_channels();
    const ready = channels.filter((c) => c.get_is_channel_ready());
    const active = ready.filter((c) => c.get_is_usable()).length;
    return {
      nodeId: this.nodeId,
      alias: this.alias,
      network: 'regtest',
      blockHeight: this.tip.height,
      blockHash: this.tip.id,
      blockTime: this.tip.time,
      peers: this.peerManager.list_peers().length,
      channels: { active, inactive: ready.length - active, pending: channels.length - ready.length },
      address: this.listening,
    };
  }

  /**
   * Node ids of the peers this node has a completed handshake with.
   *
   * @example
   * alice.peers().includes(bob.nodeId); // true
   */
  peers(): string[] {
    return this.peerManager.list_peers().map((peer) => toHex(peer.get_counterparty_node_id()));
  }

  /**
   * Accepts BOLT 8 connections on a TCP port (an ephemeral one on 127.0.0.1 by default).
   *
   * @example
   * const address = await bob.listen(); // { nodeId, host: '127.0.0.1', port: 40211 }
   * await alice.connect(address);
   */
  async listen(options: { host?: string; port?: number } = {}): Promise<PeerAddress> {
    this.assertOpen();
    this.listenCall ??= this.serve(options.host ?? '127.0.0.1', options.port ?? 0).catch((error: unknown) => {
      this.listenCall = undefined;
      throw error;
    });
    return this.listenCall;
  }

  private async serve(host: string, port: number): Promise<PeerAddress> {
    const server = createServer((socket) => {
      if (this.closed) socket.destroy();
      else this.accept(tcpWire(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) =>
        reject(new PeerError(`cannot listen on ${host}:${port}`, { cause: error })),
      );
      server.listen(port, host, resolve);
    });
    server.unref();
    if (this.closed) {
      server.close();
      throw new ClosedError();
    }
    this.listening = { nodeId: this.nodeId, host, port: (server.address() as AddressInfo).port };
    return this.listening;
  }

  /**
   * Connects to a peer and completes the BOLT 8 handshake and `init` exchange: in memory when given a
   * Node of this process, over TCP when given a {@link PeerAddress}. A no-op if already connected.
   *
   * @example
   * await alice.connect(bob);                  // in memory
   * await alice.connect(await bob.listen());   // over loopback TCP
   */
  async connect(peer: Node | PeerAddress, options: { timeoutMs?: number } = {}): Promise<void> {
    this.assertOpen();
    const timeoutMs = timeLimit(options.timeoutMs, 10_000);
    const theirId = fromHex(peer.nodeId, 33, 'peer node id');
    const nodeId = toHex(theirId);
    if (nodeId === this.nodeId) throw new ArgumentError('a node cannot connect to itself');
    if (this.peers().includes(nodeId)) return;
    let wire: Wire;
    if (peer instanceof Node) {
      peer.assertOpen();
      const [ours, theirs] = memoryPair();
      peer.accept(theirs);
      wire = ours;
    } else {
      wire = tcpWire(await open(peer.host, peer.port));
    }
    const connection = this.track(wire);
    const result = this.peerManager.new_outbound_connection(
      theirId,
      connection.descriptor,
      ldk.Option_SocketAddressZ.constructor_none(),
    );
    if (!result.is_ok()) {
      connection.drop();
      throw new PeerError(`LDK refused a connection to ${nodeId} (a connection to it may be under way)`);
    }
    connection.start((result as ldk.Result_CVec_u8ZPeerHandleErrorZ_OK).res);
    this.wake();
    await until(
      () => {
        if (this.peers().includes(nodeId)) return true;
        if (connection.isClosed) throw new PeerError(`${nodeId} closed the connection during the handshake`);
        return false;
      },
      timeoutMs,
      `the handshake with ${nodeId}`,
    );
  }

  /**
   * Opens a channel to a connected peer, funded by this node from the emulated chain (the funding
   * input is not checked), and resolves once the funding transaction is in the mempool. Mine 6 blocks
   * to make it usable and, unless `private`, announce it to the network.
   *
   * @example
   * const pending = await alice.openChannel({ peer: bob.nodeId, capacitySat: 500_000, pushSat: 100_000 });
   * chain.mine(6);
   */
  async openChannel(options: {
    peer: string;
    capacitySat: number;
    pushSat?: number;
    private?: boolean;
    timeoutMs?: number;
  }): Promise<PendingChannel> {
    this.assertOpen();
    const peer = fromHex(options.peer, 33, 'peer node id');
    const capacitySat = amount(options.capacitySat, 'capacitySat', 1);
    const pushSat = amount(options.pushSat ?? 0, 'pushSat');
    if (pushSat > capacitySat) throw new ArgumentError('pushSat cannot exceed capacitySat');
    const timeoutMs = timeLimit(options.timeoutMs, 30_000);
    if (!this.peers().includes(toHex(peer)))
      throw new PeerError(`not connected to ${toHex(peer)}: connect first`);
    const result = this.manager.create_channel(
      peer,
      BigInt(capacitySat),
      BigInt(pushSat) * 1000n,
      0n,
      null,
      config(!options.private),
    );
    if (!result.is_ok()) {
      throw new ChannelError(
        `LDK refused the channel: ${describe((result as ldk.Result_ChannelIdAPIErrorZ_Err).err)}`,
      );
    }
    const temporaryId = toHex((result as ldk.Result_ChannelIdAPIErrorZ_OK).res.get_a());
    const op = this.pending<PendingChannel>(
      timeoutMs,
      () => new TimeoutError(`the channel to ${toHex(peer)} was not funded within ${timeoutMs} ms`),
    );
    this.opening.set(temporaryId, op);
    this.wake();
    return op.promise.finally(() => {
      for (const [id, waiting] of this.opening) if (waiting === op) this.opening.delete(id);
    });
  }

  /**
   * Every channel this node has, pending ones included.
   *
   * @example
   * const [channel] = alice.listChannels();
   * channel.localBalanceMsat; // 400_000_000
   */
  listChannels(): Channel[] {
    return this.manager.list_channels().map(channelOf);
  }

  /**
   * Channel balances summed: what this node can spend (`localMsat`) and receive (`remoteMsat`).
   *
   * @example
   * alice.balance().localMsat; // 999_000_000
   */
  balance(): Balance {
    const total = { localMsat: 0, remoteMsat: 0, unsettledLocalMsat: 0, unsettledRemoteMsat: 0 };
    const pending = { pendingOpenLocalMsat: 0, pendingOpenRemoteMsat: 0 };
    for (const channel of this.listChannels()) {
      if (channel.ready) {
        total.localMsat += channel.localBalanceMsat;
        total.remoteMsat += channel.remoteBalanceMsat;
        total.unsettledLocalMsat += channel.unsettledLocalMsat;
        total.unsettledRemoteMsat += channel.unsettledRemoteMsat;
      } else {
        pending.pendingOpenLocalMsat += channel.localBalanceMsat;
        pending.pendingOpenRemoteMsat += channel.remoteBalanceMsat;
      }
    }
    return { ...total, ...pending };
  }

  /**
   * The public channels and nodes this node has learned from gossip.
   *
   * @example
   * alice.graph().channels.length; // 2 on an A—B—C line
   */
  graph(): Graph {
    const view = this.networkGraph.read_only();
    // The view holds a read lock on the graph until freed; gossip arriving meanwhile would fail.
    try {
      const nodes = view.list_nodes().map((id) => toHex(id.as_slice()));
      const channels: GraphChannel[] = [];
      for (const scid of view.list_channels()) {
        const info = present(view.channel(scid));
        if (!info) continue;
        channels.push({
          shortChannelId: shortChannelId(scid),
          capacitySat: some(info.get_capacity_sats()),
          node1: toHex(info.get_node_one().as_slice()),
          node2: toHex(info.get_node_two().as_slice()),
          node1Policy: policy(info.get_one_to_two()),
          node2Policy: policy(info.get_two_to_one()),
        });
      }
      return { nodes, channels };
    } finally {
      view.free();
    }
  }

  /**
   * Issues a real BOLT11 invoice (`lnbcrt…`, signed by this node). Without a route to it from the
   * public graph, LDK adds route hints through this node's private channels.
   *
   * @example
   * const invoice = await bob.createInvoice({ amountMsat: 21_000, description: 'one request', expirySeconds: 600 });
   * invoice.paymentRequest; // "lnbcrt210n1p…"
   */
  async createInvoice(options: CreateInvoiceOptions = {}): Promise<Invoice> {
    this.assertOpen();
    const amountMsat = amount(options.amountMsat ?? 0, 'amountMsat') || undefined;
    const expirySeconds = amount(options.expirySeconds ?? DEFAULT_EXPIRY_SECONDS, 'expirySeconds', 1);
    if (expirySeconds > 0xffffffff) throw new ArgumentError('expirySeconds must fit in 32 bits');
    if (options.description !== undefined && options.descriptionHash !== undefined) {
      throw new ArgumentError('give description or descriptionHash, not both');
    }
    let description: ldk.Bolt11InvoiceDescription;
    if (options.descriptionHash !== undefined) {
      const hash = fromHex(options.descriptionHash, 32, 'descriptionHash');
      description = ldk.Bolt11InvoiceDescription.constructor_hash(ldk.Sha256.constructor_from_bytes(hash));
    } else {
      const text = ldk.Description.constructor_new(options.description ?? '');
      if (!text.is_ok())
        throw new ArgumentError('description is too long for a BOLT11 invoice (639 bytes at most)');
      description = ldk.Bolt11InvoiceDescription.constructor_direct(
        (text as ldk.Result_DescriptionCreationErrorZ_OK).res,
      );
    }
    let preimage = options.preimage === undefined ? undefined : fromHex(options.preimage, 32, 'preimage');
    const chosenHash = preimage && sha256(preimage);
    if (chosenHash && this.invoices.has(toHex(chosenHash))) {
      throw new InvoiceError(
        'DEVNET_INVOICE_EXISTS',
        `an invoice with payment hash ${toHex(chosenHash)} already exists`,
      );
    }

    const createdAt = Math.floor(this.now() / 1000);
    // LDK enforces expiry against its own clock (the newest block time), which lags the wall clock on an
    // idle chain; stretching LDK's expiry by that lag makes both expire at the same moment.
    const ldkExpiry = Math.min(0xffffffff, Math.max(1, expirySeconds + createdAt - this.ldkTime));
    const result = this.manager.create_bolt11_invoice(
      amountMsat === undefined
        ? ldk.Option_u64Z.constructor_none()
        : ldk.Option_u64Z.constructor_some(BigInt(amountMsat)),
      description,
      ldk.Option_u32Z.constructor_some(ldkExpiry),
      ldk.Option_u16Z.constructor_none(),
      chosenHash
        ? ldk.Option_ThirtyTwoBytesZ.constructor_some(chosenHash)
        : ldk.Option_ThirtyTwoBytesZ.constructor_none(),
    );
    if (!result.is_ok()) {
      throw new ArgumentError(
        `LDK could not create the invoice: ${describe((result as ldk.Result_Bolt11InvoiceSignOrCreationErrorZ_Err).err)}`,
      );
    }
    const invoice = (result as ldk.Result_Bolt11InvoiceSignOrCreationErrorZ_OK).res;
    if (!preimage) {
      const known = this.manager.get_payment_preimage(invoice.payment_hash(), invoice.payment_secret());
      preimage = (known as ldk.Result_ThirtyTwoBytesAPIErrorZ_OK).res;
    }
    const record: Mutable<Invoice> = {
      paymentHash: toHex(invoice.payment_hash()),
      paymentRequest: redate(invoice.to_str(), createdAt, expirySeconds, this.keys.get_node_secret_key()),
      preimage: toHex(preimage),
      amountMsat,
      description: options.descriptionHash === undefined ? (options.description ?? '') : undefined,
      descriptionHash: options.descriptionHash?.toLowerCase(),
      createdAt,
      expiresAt: createdAt + expirySeconds,
      state: 'open',
      receivedMsat: 0,
      settledAt: undefined,
      addIndex: ++this.addIndex,
      settleIndex: undefined,
    };
    this.invoices.set(record.paymentHash, record);
    this.openInvoices.add(record.paymentHash);
    this.nextExpiryMs = Math.min(this.nextExpiryMs, record.expiresAt * 1000);
    this.emitInvoice(record);
    return { ...record };
  }

  /**
   * An invoice of this node by payment hash (hex), or undefined.
   *
   * @example
   * bob.lookupInvoice(invoice.paymentHash)?.state; // 'settled'
   */
  lookupInvoice(paymentHash: string): Invoice | undefined {
    const key = toHex(fromHex(paymentHash, 32, 'payment hash'));
    this.expireInvoices();
    const record = this.invoices.get(key);
    return record && { ...record };
  }

  /**
   * Every invoice of this node, oldest first.
   *
   * @example
   * bob.listInvoices().filter((i) => i.state === 'settled');
   */
  listInvoices(): Invoice[] {
    this.expireInvoices();
    return [...this.invoices.values()].map((record) => ({ ...record }));
  }

  /**
   * Resolves once the invoice is settled, expired or canceled (at once if it already is). Rejects
   * with a NotFoundError for an unknown hash, or a TimeoutError (default 60 s).
   *
   * @example
   * const settled = await bob.waitInvoice(invoice.paymentHash, { timeoutMs: 5_000 });
   */
  async waitInvoice(paymentHash: string, options: { timeoutMs?: number } = {}): Promise<Invoice> {
    this.assertOpen();
    const timeoutMs = timeLimit(options.timeoutMs, 60_000);
    const current = this.lookupInvoice(paymentHash);
    if (!current) throw new NotFoundError(`no invoice with payment hash ${paymentHash}`);
    if (current.state !== 'open') return current;
    const op = this.pending<Invoice>(
      timeoutMs,
      () => new TimeoutError(`invoice ${current.paymentHash} was still open after ${timeoutMs} ms`),
    );
    const stop = this.onInvoice((invoice) => {
      if (invoice.paymentHash === current.paymentHash && invoice.state !== 'open') op.resolve(invoice);
    });
    return op.promise.finally(stop);
  }

  /**
   * Cancels an open (or expired) invoice: payments to it are refused from now on.
   *
   * @example
   * await bob.cancelInvoice(invoice.paymentHash);
   */
  async cancelInvoice(paymentHash: string): Promise<Invoice> {
    this.assertOpen();
    const key = toHex(fromHex(paymentHash, 32, 'payment hash'));
    this.expireInvoices();
    const record = this.invoices.get(key);
    if (!record) throw new NotFoundError(`no invoice with payment hash ${key}`);
    if (record.state === 'settled')
      throw new InvoiceError('DEVNET_INVOICE_SETTLED', `invoice ${key} is already settled`);
    if (record.state !== 'canceled') {
      record.state = 'canceled';
      this.openInvoices.delete(key);
      this.emitInvoice(record);
    }
    return { ...record };
  }

  /**
   * Calls `listener` with every invoice change: created (open), settled, expired, canceled. Returns the
   * function that unsubscribes.
   *
   * @example
   * const stop = bob.onInvoice((invoice) => { if (invoice.state === 'settled') console.log(invoice.paymentHash); });
   */
  onInvoice(listener: (invoice: Invoice) => void): () => void {
    this.invoiceListeners.add(listener);
    return () => this.invoiceListeners.delete(listener);
  }

  /**
   * Pays a BOLT11 invoice and resolves with the succeeded payment (preimage, fee). Rejects with a
   * PaymentError whose code says why: `DEVNET_INVALID_INVOICE`, `DEVNET_INVOICE_EXPIRED`,
   * `DEVNET_AMOUNT_REQUIRED`, `DEVNET_WRONG_AMOUNT`, `DEVNET_SELF_PAYMENT`, `DEVNET_INSUFFICIENT_BALANCE`,
   * `DEVNET_NO_ROUTE`, `DEVNET_PAYMENT_REJECTED` (the payee refused it), `DEVNET_TIMEOUT`,
   * `DEVNET_PAYMENT_FAILED`.
   *
   * An invoice is never paid twice: after a success, paying it again rejects with
   * `DEVNET_ALREADY_PAID` (the error's `payment` holds the earlier payment and its preimage), and while
   * a payment is in flight with `DEVNET_PAYMENT_IN_FLIGHT`. A failed payment may be retried.
   *
   * @example
   * const { preimage, feeMsat } = await alice.payInvoice(invoice.paymentRequest, { maxFeeMsat: 5_000 });
   */
  async payInvoice(paymentRequest: string, options: PayOptions = {}): Promise<SucceededPayment> {
    this.assertOpen();
    const timeoutMs = timeLimit(options.timeoutMs, 60_000);
    const maxFeeMsat =
      options.maxFeeMsat === undefined ? undefined : amount(options.maxFeeMsat, 'maxFeeMsat');
    const parsed = ldk.Bolt11Invoice.constructor_from_str(String(paymentRequest).trim());
    if (!parsed.is_ok()) {
      throw new PaymentError(
        'DEVNET_INVALID_INVOICE',
        `not a valid BOLT11 invoice: ${describe((parsed as ldk.Result_Bolt11InvoiceParseOrSemanticErrorZ_Err).err)}`,
      );
    }
    const invoice = (parsed as ldk.Result_Bolt11InvoiceParseOrSemanticErrorZ_OK).res;
    const paymentHash = toHex(invoice.payment_hash());
    const refuse = (code: PaymentCode, message: string) => {
      const record = this.payments.get(paymentHash);
      return new PaymentError(code, message, { paymentHash, payment: record && { ...record } });
    };
    if (invoice.currency() !== ldk.Currency.LDKCurrency_Regtest) {
      throw refuse('DEVNET_INVALID_INVOICE', 'the invoice is not for regtest (its prefix is not lnbcrt)');
    }
    const destination = toHex(invoice.get_payee_pub_key());
    if (destination === this.nodeId) throw refuse('DEVNET_SELF_PAYMENT', 'the invoice is this node’s own');
    const expiresAt = Number(invoice.duration_since_epoch() + invoice.expiry_time());
    if (this.now() > expiresAt * 1000) {
      throw refuse(
        'DEVNET_INVOICE_EXPIRED',
        `the invoice expired at ${new Date(expiresAt * 1000).toISOString()}`,
      );
    }
    const requested = some(invoice.amount_milli_satoshis());
    if (requested === undefined && options.amountMsat === undefined) {
      throw refuse('DEVNET_AMOUNT_REQUIRED', 'the invoice has no amount: pass amountMsat');
    }
    if (requested !== undefined && options.amountMsat !== undefined && options.amountMsat !== requested) {
      throw refuse(
        'DEVNET_WRONG_AMOUNT',
        `the invoice asks for ${requested} msat, not ${options.amountMsat} msat`,
      );
    }
    const amountMsat = requested ?? amount(options.amountMsat!, 'amountMsat', 1);
    const previous = this.payments.get(paymentHash);
    if (previous?.state === 'succeeded') {
      throw refuse(
        'DEVNET_ALREADY_PAID',
        `invoice ${paymentHash} is already paid; its preimage is in error.payment`,
      );
    }
    if (previous?.state === 'in-flight')
      throw refuse('DEVNET_PAYMENT_IN_FLIGHT', `a payment of ${paymentHash} is in flight`);

    const params =
      requested === undefined
        ? ldk.UtilMethods.constructor_payment_parameters_from_variable_amount_invoice(
            invoice,
            BigInt(amountMsat),
          )
        : ldk.UtilMethods.constructor_payment_parameters_from_invoice(invoice);
    if (!params.is_ok()) throw refuse('DEVNET_INVALID_INVOICE', 'LDK cannot pay this invoice');
    const { res } = params as ldk.Result_C3Tuple_ThirtyTwoBytesRecipientOnionFieldsRouteParametersZNoneZ_OK;
    const route = res.get_c();
    if (maxFeeMsat !== undefined)
      route.set_max_total_routing_fee_msat(ldk.Option_u64Z.constructor_some(BigInt(maxFeeMsat)));
    const attempt = new Uint8Array(randomBytes(32));
    const record: Mutable<Payment> = {
      paymentHash,
      paymentRequest: invoice.to_str(),
      destination,
      amountMsat,
      state: 'in-flight',
      createdAt: Math.floor(this.now() / 1000),
      index: ++this.paymentIndex,
      preimage: undefined,
      feeMsat: undefined,
      settledAt: undefined,
      failure: undefined,
    };
    const sent = this.manager.send_payment(
      res.get_a(),
      res.get_b(),
      attempt,
      route,
      ldk.Retry.constructor_attempts(PAYMENT_RETRIES),
    );
    this.payments.set(paymentHash, record);
    if (!sent.is_ok()) {
      const reason = (sent as ldk.Result_NoneRetryableSendFailureZ_Err).err;
      const [code, message] =
        reason === ldk.RetryableSendFailure.LDKRetryableSendFailure_RouteNotFound
          ? this.routeFailure(amountMsat, maxFeeMsat)
          : reason === ldk.RetryableSendFailure.LDKRetryableSendFailure_PaymentExpired
            ? (['DEVNET_INVOICE_EXPIRED', 'the invoice expired'] as const)
            : ([
                'DEVNET_PAYMENT_FAILED',
                `LDK could not send the payment (${variant(ldk.RetryableSendFailure, reason)})`,
              ] as const);
      this.fail(record, code, message);
      throw refuse(code, message);
    }
    this.attempts.set(paymentHash, toHex(attempt));
    this.emitPayment(record);
    const op = this.pending<SucceededPayment>(timeoutMs, () => {
      // LDK stops retrying; HTLCs already out still resolve, and a late success is still recorded.
      this.manager.abandon_payment(attempt);
      this.wake();
      return refuse(
        'DEVNET_TIMEOUT',
        `the payment did not complete within ${timeoutMs} ms and was abandoned`,
      );
    });
    this.paying.set(paymentHash, op);
    this.wake();
    return op.promise.finally(() => {
      if (this.paying.get(paymentHash) === op) this.paying.delete(paymentHash);
    });
  }

  /**
   * A payment this node sent, by payment hash (hex), or undefined.
   *
   * @example
   * alice.lookupPayment(invoice.paymentHash)?.state; // 'succeeded'
   */
  lookupPayment(paymentHash: string): Payment | undefined {
    const record = this.payments.get(toHex(fromHex(paymentHash, 32, 'payment hash')));
    return record && { ...record };
  }

  /**
   * Every payment this node sent or tried, in the order they started.
   *
   * @example
   * alice.listPayments().map((p) => p.state);
   */
  listPayments(): Payment[] {
    return [...this.payments.values()].sort((a, b) => a.index - b.index).map((record) => ({ ...record }));
  }

  /**
   * Calls `listener` with every payment change: in flight, succeeded, failed. Returns the function
   * that unsubscribes.
   *
   * @example
   * alice.onPayment((payment) => console.log(payment.paymentHash, payment.state));
   */
  onPayment(listener: (payment: Payment) => void): () => void {
    this.paymentListeners.add(listener);
    return () => this.paymentListeners.delete(listener);
  }

  /**
   * Stops the event loop, disconnects every peer, stops listening, and rejects pending calls with a
   * ClosedError. Channels stay open on the other side, with this node offline.
   *
   * @example
   * await node.close();
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.scheduled) clearImmediate(this.scheduled);
    this.unsubscribe();
    this.peerManager.disconnect_all_peers();
    for (const connection of [...this.connections]) connection.drop();
    for (const op of [...this.operations]) op.reject(new ClosedError());
    this.invoiceListeners.clear();
    this.paymentListeners.clear();
    const server = this.server;
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError();
  }

  private pending<T>(timeoutMs: number, onTimeout: () => Error): Deferred<T> {
    const op = deferred<T>(timeoutMs, onTimeout);
    this.operations.add(op);
    const forget = () => this.operations.delete(op);
    op.promise.then(forget, forget);
    return op;
  }

  private accept(wire: Wire): void {
    const connection = this.track(wire);
    const result = this.peerManager.new_inbound_connection(
      connection.descriptor,
      ldk.Option_SocketAddressZ.constructor_none(),
    );
    if (!result.is_ok()) connection.drop();
  }

  private track(wire: Wire): Connection {
    const connection = new Connection(
      this.peerManager,
      wire,
      () => this.wake(),
      (gone) => this.connections.delete(gone),
    );
    this.connections.add(connection);
    return connection;
  }

  private log(record: ldk.Record): void {
    if (!this.logger) return;
    const rank = record.get_level();
    if (rank >= this.logRank) this.logger(LEVELS[rank] ?? 'error', record.get_args());
  }

  private connectBlock(block: Block): void {
    if (this.closed) return;
    for (const confirmable of this.confirmables) {
      const confirm = confirmable();
      // Fresh tuples per call: the bindings hand them to WebAssembly, which takes them over.
      const txdata = block.transactions.map((tx, i) => ldk.TwoTuple_usizeTransactionZ.constructor_new(i, tx));
      confirm.transactions_confirmed(block.header, txdata, block.height);
      confirm.best_block_updated(block.header, block.height);
    }
    this.tip = block;
    this.ldkTime = Math.max(this.ldkTime, block.time);
    this.wake();
  }

  /**
   * Runs the event loop soon (once, however often asked before it runs). The Immediate stays ref'd:
   * it is gone once run, and an unref'd one would wait for the next timer instead of running at once.
   */
  private wake(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      this.tick();
    });
  }

  private loop(): void {
    this.loops++;
    if (this.loops % PEER_TIMER_LOOPS === 0) this.peerManager.timer_tick_occurred();
    if (this.loops % MANAGER_TIMER_LOOPS === 0) this.manager.timer_tick_occurred();
    this.expireInvoices();
    this.tick();
  }

  /** Handles LDK's events, forwards HTLCs and flushes messages until there is nothing left to do. */
  private tick(): void {
    if (this.closed) return;
    for (let round = 0; round < 64; round++) {
      for (const source of this.eventSources) source.process_pending_events(this.eventHandler);
      const events = this.queuedEvents.splice(0);
      for (const event of events) {
        try {
          this.handle(event);
        } catch (error) {
          this.logger?.('error', `handling ${event.constructor.name}: ${(error as Error).stack ?? error}`);
        }
      }
      // LDK suggests a short random delay before forwarding, for privacy; on a devnet speed wins.
      const forwards = this.forwardsDue;
      this.forwardsDue = false;
      if (forwards) this.manager.process_pending_htlc_forwards();
      this.peerManager.process_events();
      if (events.length === 0 && !forwards) return;
    }
    this.wake();
  }

  private handle(event: ldk.Event): void {
    if (event instanceof ldk.Event_FundingGenerationReady) this.fund(event);
    else if (event instanceof ldk.Event_ChannelPending) this.channelPending(event);
    else if (event instanceof ldk.Event_ChannelClosed) this.channelClosed(event);
    else if (event instanceof ldk.Event_PendingHTLCsForwardable) this.forwardsDue = true;
    else if (event instanceof ldk.Event_PaymentClaimable) this.claim(event);
    else if (event instanceof ldk.Event_PaymentClaimed) this.claimed(event);
    else if (event instanceof ldk.Event_PaymentSent) this.sent(event);
    else if (event instanceof ldk.Event_PaymentFailed) this.failed(event);
    // Every other event needs nothing here: channel and balance state is read from LDK when asked
    // for, and sweeping on-chain outputs is beyond what the emulated chain models.
  }

  private fund(event: ldk.Event_FundingGenerationReady): void {
    const tx = Transaction.funding(event.output_script, event.channel_value_satoshis);
    const op = this.opening.get(toHex(event.temporary_channel_id.get_a()));
    const result = this.manager.funding_transaction_generated(
      event.temporary_channel_id,
      event.counterparty_node_id,
      tx,
    );
    if (!result.is_ok()) {
      op?.reject(
        new ChannelError(
          `LDK refused the funding transaction: ${describe((result as ldk.Result_NoneAPIErrorZ_Err).err)}`,
        ),
      );
    } else if (op) {
      // A funded channel's id is its funding txid (internal byte order) with the output index, 0 here,
      // XORed into the last two bytes: a close from now on reports that id.
      this.opening.set(toHex(Transaction.txid(tx)), op);
    }
  }

  private channelPending(event: ldk.Event_ChannelPending): void {
    this.opening.get(toHex(event.former_temporary_channel_id.get_a()))?.resolve({
      channelId: toHex(event.channel_id.get_a()),
      peer: toHex(event.counterparty_node_id),
      fundingTxid: toReversedHex(event.funding_txo.get_txid()),
      fundingOutput: event.funding_txo.get_index(),
    });
  }

  private channelClosed(event: ldk.Event_ChannelClosed): void {
    this.opening
      .get(toHex(event.channel_id.get_a()))
      ?.reject(new ChannelError(`the channel closed before it was funded: ${event.reason.to_str()}`));
  }

  /** A payment to us arrived: take it if it pays an open invoice of ours, refuse it otherwise. */
  private claim(event: ldk.Event_PaymentClaimable): void {
    this.expireInvoices();
    const record = this.invoices.get(toHex(event.payment_hash));
    if (record?.state === 'open') this.manager.claim_funds(fromHex(record.preimage, 32, 'preimage'));
    else this.manager.fail_htlc_backwards(event.payment_hash);
  }

  private claimed(event: ldk.Event_PaymentClaimed): void {
    const record = this.invoices.get(toHex(event.payment_hash));
    if (!record || record.state === 'settled') return;
    record.state = 'settled';
    record.receivedMsat = Number(event.amount_msat);
    record.settledAt = Math.floor(this.now() / 1000);
    record.settleIndex = ++this.settleIndex;
    this.openInvoices.delete(record.paymentHash);
    this.emitInvoice(record);
  }

  private sent(event: ldk.Event_PaymentSent): void {
    const paymentHash = toHex(event.payment_hash);
    const record = this.payments.get(paymentHash);
    if (!record) return;
    this.attempts.delete(paymentHash);
    // A success is final, even one arriving after a timeout: the preimage proves the payee was paid.
    if (record.state !== 'succeeded') {
      record.state = 'succeeded';
      record.preimage = toHex(event.payment_preimage);
      record.feeMsat = some(event.fee_paid_msat) ?? 0;
      record.settledAt = Math.floor(this.now() / 1000);
      record.failure = undefined;
      this.emitPayment(record);
    }
    this.paying.get(paymentHash)?.resolve({ ...record } as SucceededPayment);
  }

  private failed(event: ldk.Event_PaymentFailed): void {
    const attempt = toHex(event.payment_id);
    const paymentHash = [...this.attempts].find(([, id]) => id === attempt)?.[0];
    const record = paymentHash === undefined ? undefined : this.payments.get(paymentHash);
    if (!paymentHash || !record || record.state !== 'in-flight') return;
    const reason =
      event.reason instanceof ldk.Option_PaymentFailureReasonZ_Some ? event.reason.some : undefined;
    const R = ldk.PaymentFailureReason;
    const [code, message]: readonly [PaymentCode, string] =
      reason === R.LDKPaymentFailureReason_RecipientRejected
        ? [
            'DEVNET_PAYMENT_REJECTED',
            'the payee refused the payment (unknown, expired or canceled invoice, or wrong amount)',
          ]
        : reason === R.LDKPaymentFailureReason_UserAbandoned
          ? ['DEVNET_TIMEOUT', 'the payment was abandoned after its timeout']
          : reason === R.LDKPaymentFailureReason_RetriesExhausted
            ? ['DEVNET_NO_ROUTE', `every route tried failed (${PAYMENT_RETRIES + 1} attempts)`]
            : reason === R.LDKPaymentFailureReason_PaymentExpired
              ? ['DEVNET_INVOICE_EXPIRED', 'the invoice expired while paying']
              : reason === R.LDKPaymentFailureReason_RouteNotFound
                ? this.routeFailure(record.amountMsat, undefined)
                : [
                    'DEVNET_PAYMENT_FAILED',
                    `the payment failed (${reason === undefined ? 'no reason given' : variant(R, reason)})`,
                  ];
    this.fail(record, code, message);
    this.paying
      .get(paymentHash)
      ?.reject(new PaymentError(code, message, { paymentHash, payment: { ...record } }));
  }

  private fail(record: Mutable<Payment>, code: PaymentCode, message: string): void {
    record.state = 'failed';
    record.failure = { code, message };
    this.attempts.delete(record.paymentHash);
    this.emitPayment(record);
  }

  /** No route found: say whether our own channels lack the funds or the network lacks a path. */
  private routeFailure(amountMsat: number, maxFeeMsat: number | undefined): [PaymentCode, string] {
    const spendable = this.listChannels()
      .filter((channel) => channel.usable)
      .reduce((sum, channel) => sum + channel.spendableMsat, 0);
    if (spendable < amountMsat) {
      return [
        'DEVNET_INSUFFICIENT_BALANCE',
        `this node can send at most ${spendable} msat now; the payment needs ${amountMsat} msat plus fees`,
      ];
    }
    const limit = maxFeeMsat === undefined ? '' : ` within the ${maxFeeMsat} msat fee limit`;
    return ['DEVNET_NO_ROUTE', `no route to the payee for ${amountMsat} msat${limit}`];
  }

  private expireInvoices(): void {
    const now = this.now();
    if (now <= this.nextExpiryMs) return;
    let next = Number.POSITIVE_INFINITY;
    for (const hash of this.openInvoices) {
      const record = this.invoices.get(hash)!;
      if (now > record.expiresAt * 1000) {
        record.state = 'expired';
        this.openInvoices.delete(hash);
        this.emitInvoice(record);
      } else next = Math.min(next, record.expiresAt * 1000);
    }
    this.nextExpiryMs = next;
  }

  private emitInvoice(record: Invoice): void {
    for (const listener of this.invoiceListeners) {
      try {
        listener({ ...record });
      } catch (error) {
        this.logger?.('error', `invoice listener threw: ${(error as Error).stack ?? error}`);
      }
    }
  }

  private emitPayment(record: Payment): void {
    for (const listener of this.paymentListeners) {
      try {
        listener({ ...record });
      } catch (error) {
        this.logger?.('error', `payment listener threw: ${(error as Error).stack ?? error}`);
      }
    }
  }
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = dial({ host, port });
    const failed = (error: Error) =>
      reject(new PeerError(`cannot connect to ${host}:${port}: ${error.message}`, { cause: error }));
    socket.once('error', failed);
    socket.once('connect', () => {
      socket.off('error', failed);
      resolve(socket);
    });
  });
}

/**
 * A new node following `options.chain`, with no peers and no channels. Loads LDK's WebAssembly on
 * first use (once per process).
 *
 * @example
 * const merchant = await Node.create({ chain, alias: 'merchant' });
 */
export const create: (options: Options) => Promise<Node> = Node.create;
