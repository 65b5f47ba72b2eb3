/**
 * A whole Lightning network in this process: named LDK nodes on one emulated chain, connected over the
 * real BOLT 8 transport (in memory, or TCP on loopback), with channels opened, confirmed and announced.
 *
 * Routing is real gossip: channels are public unless asked otherwise, announced once 6 blocks deep,
 * and `start`/`openChannel` return only when every node connected to a new public channel has it in
 * its graph, so any topology routes. A `private` channel is never announced; payments reach a node
 * through one via the route hints LDK writes into that node's invoices.
 *
 * @example
 * const net = await Network.start({
 *   nodes: ['merchant', 'payer'],
 *   channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000, pushSat: 100_000 }],
 * });
 * const invoice = await net.node('merchant').createInvoice({ amountMsat: 21_000 });
 * const { preimage } = await net.node('payer').payInvoice(invoice.paymentRequest);
 * await net.close();
 */
import * as Chain from './Chain.js';
import { ArgumentError } from './Errors.js';
import { concat, sha256 } from './internal/bytes.js';
import { timeLimit, until } from './internal/wait.js';
import * as Node from './Node.js';

/** How nodes reach each other: both carry the same encrypted BOLT 8 stream. */
export type Transport = 'memory' | 'tcp';

/** One channel to open: who opens (and funds) it, to whom, how big, how much is pushed across. */
export interface ChannelSpec {
  /** The node that opens (and funds) the channel. */
  readonly from: string;
  readonly to: string;
  readonly capacitySat: number;
  /** Given to `to` at opening, so it can pay back at once. Defaults to 0. */
  readonly pushSat?: number;
  /** Never announced; reachable through invoice route hints. Defaults to false. */
  readonly private?: boolean;
}

/** What {@link start} takes: the node names, and the channels between them. */
export interface Options {
  /** Node names, also used as aliases. */
  readonly nodes: readonly string[];
  readonly channels?: readonly ChannelSpec[];
  /** Defaults to `'memory'`. */
  readonly transport?: Transport;
  /** 32 bytes or more: node seeds derive from it and the names, so node ids repeat run to run. */
  readonly seed?: Uint8Array;
  /** Wall clock in unix milliseconds, for block times, invoice timestamps and expiry. */
  readonly now?: () => number;
  readonly logger?: (node: string, level: Node.LogLevel, message: string) => void;
  readonly logLevel?: Node.LogLevel;
  /** Limit for each wait (peers connecting, channels becoming usable and announced). Defaults to 30 000. */
  readonly timeoutMs?: number;
}

/** Options of {@link line}: one channel of this shape between each pair of neighbours. */
export interface LineOptions extends Omit<Options, 'nodes' | 'channels'> {
  /** Defaults to 1 000 000. */
  readonly capacitySat?: number;
  readonly pushSat?: number;
  readonly private?: boolean;
}

/** Blocks on top of a funding transaction before LDK announces the channel (BOLT 7). */
const ANNOUNCEMENT_DEPTH = 6;
const utf8 = (text: string) => new TextEncoder().encode(text);

/** A running network. Start one with {@link start} or {@link line}. */
export class Network {
  readonly chain: Chain.Chain;
  readonly transport: Transport;
  private readonly nodes: ReadonlyMap<string, Node.Node>;
  private readonly timeoutMs: number;

  private constructor(
    chain: Chain.Chain,
    nodes: ReadonlyMap<string, Node.Node>,
    transport: Transport,
    timeoutMs: number,
  ) {
    this.chain = chain;
    this.nodes = nodes;
    this.transport = transport;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Creates the nodes, connects the ends of every channel, opens the channels and mines until they are
   * usable and known to the whole network.
   *
   * @example
   * const net = await Network.Network.start({ nodes: ['a', 'b'], channels: [{ from: 'a', to: 'b', capacitySat: 500_000 }] });
   */
  static async start(options: Options): Promise<Network> {
    const transport = options.transport ?? 'memory';
    if (transport !== 'memory' && transport !== 'tcp')
      throw new ArgumentError("transport must be 'memory' or 'tcp'");
    const timeoutMs = timeLimit(options.timeoutMs, 30_000);
    const names = options.nodes;
    if (!Array.isArray(names) || names.length === 0)
      throw new ArgumentError('nodes must list at least one name');
    for (const name of names) {
      if (typeof name !== 'string' || name === '')
        throw new ArgumentError('node names must be non-empty strings');
    }
    if (new Set(names).size !== names.length) throw new ArgumentError('node names must be unique');
    if (options.seed !== undefined && !(options.seed instanceof Uint8Array && options.seed.length >= 32)) {
      throw new ArgumentError('seed must be at least 32 bytes');
    }
    const { seed, logger } = options;
    const chain = Chain.create({ now: options.now });
    const nodes = new Map<string, Node.Node>();
    const network = new Network(chain, nodes, transport, timeoutMs);
    try {
      for (const name of names) {
        const node = await Node.create({
          chain,
          alias: name,
          seed: seed && sha256(concat(seed, utf8(name))),
          now: options.now,
          logger: logger && ((level, message) => logger(name, level, message)),
          logLevel: options.logLevel,
        });
        nodes.set(name, node);
        if (transport === 'tcp') await node.listen();
      }
      // Every node peers with every other, so each channel update reaches every node straight from the
      // node that signed it. Relayed gossip is not reliable enough to wait on: LDK never sends a channel
      // announcement to the channel's own counterparty, and drops the counterparty's update if it
      // arrives in the same read as the announcement signatures, before the announcement exists; the
      // counterparty then has nothing to relay.
      for (const [i, a] of names.entries()) for (const b of names.slice(i + 1)) await network.connect(a, b);
      if (options.channels?.length) await network.openChannels(options.channels);
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  /**
   * A line of nodes, each with a channel to the next, opened by the left one: `line(['a','b','c'])` is
   * a—b—c, where a can pay c through b.
   *
   * @example
   * const net = await Network.line(['alice', 'bob', 'carol'], { capacitySat: 2_000_000 });
   */
  static line(names: readonly string[], options: LineOptions = {}): Promise<Network> {
    const { capacitySat = 1_000_000, pushSat, private: unannounced, ...rest } = options;
    return Network.start({
      ...rest,
      nodes: names,
      channels: names
        .slice(1)
        .map((to, i) => ({ from: names[i]!, to, capacitySat, pushSat, private: unannounced })),
    });
  }

  /** Node names, in creation order. */
  get names(): string[] {
    return [...this.nodes.keys()];
  }

  /**
   * The node called `name`.
   *
   * @example
   * const merchant = net.node('merchant');
   */
  node(name: string): Node.Node {
    const node = this.nodes.get(name);
    if (!node)
      throw new ArgumentError(`no node named ${JSON.stringify(name)} (nodes: ${this.names.join(', ')})`);
    return node;
  }

  /**
   * Mines `count` blocks on the shared chain (pending transactions go in the first).
   *
   * @example
   * net.mine(6);
   */
  mine(count = 1): Chain.Block[] {
    return this.chain.mine(count);
  }

  /**
   * Connects two nodes over the network's transport (a no-op if they already are).
   *
   * @example
   * await net.connect('payer', 'merchant');
   */
  async connect(a: string, b: string): Promise<void> {
    const from = this.node(a);
    const to = this.node(b);
    await from.connect(this.transport === 'tcp' ? to.address! : to, { timeoutMs: this.timeoutMs });
  }

  /**
   * Opens one channel as {@link start} does and returns it as its opener sees it, usable and (unless
   * private) announced.
   *
   * @example
   * const channel = await net.openChannel({ from: 'payer', to: 'merchant', capacitySat: 250_000 });
   */
  async openChannel(spec: ChannelSpec): Promise<Node.Channel> {
    const [channel] = await this.openChannels([spec]);
    return channel!;
  }

  /**
   * Opens several channels at once, sharing the blocks mined to confirm them.
   *
   * @example
   * await net.openChannels([{ from: 'a', to: 'b', capacitySat: 1e6 }, { from: 'b', to: 'c', capacitySat: 1e6 }]);
   */
  async openChannels(specs: readonly ChannelSpec[]): Promise<Node.Channel[]> {
    for (const spec of specs) {
      this.node(spec.from);
      this.node(spec.to);
      if (spec.from === spec.to)
        throw new ArgumentError(`a channel needs two different nodes (${spec.from})`);
    }
    for (const spec of specs) await this.connect(spec.from, spec.to);
    const opened = await Promise.all(
      specs.map((spec) =>
        this.node(spec.from).openChannel({
          peer: this.node(spec.to).nodeId,
          capacitySat: spec.capacitySat,
          pushSat: spec.pushSat,
          private: spec.private,
          timeoutMs: this.timeoutMs,
        }),
      ),
    );
    this.mine(ANNOUNCEMENT_DEPTH);
    const channels: Node.Channel[] = [];
    await until(
      () => {
        channels.length = 0;
        for (const [i, pending] of opened.entries()) {
          const spec = specs[i]!;
          const ours = this.node(spec.from)
            .listChannels()
            .find((c) => c.channelId === pending.channelId);
          const theirs = this.node(spec.to)
            .listChannels()
            .find((c) => c.channelId === pending.channelId);
          // Usable, and each end knows the other's fees: its invoices can then hint routes through it.
          if (!ours?.usable || !theirs?.usable || !ours.peerFees || !theirs.peerFees) return false;
          channels.push(ours);
        }
        return this.announced(channels.filter((c) => c.public));
      },
      this.timeoutMs,
      'the new channels to be usable and announced',
    );
    return channels;
  }

  /**
   * Closes every node (disconnecting all peers and stopping their event loops).
   *
   * @example
   * await net.close();
   */
  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => node.close()));
  }

  /** Whether every node can route over both directions of each of these channels. */
  private announced(channels: readonly Node.Channel[]): boolean {
    for (const node of this.nodes.values()) {
      const graph = node.graph().channels;
      for (const channel of channels) {
        const known = graph.find((c) => c.shortChannelId === channel.shortChannelId);
        if (!known) return false;
        // An end of a channel may lack its peer's direction (see `start`). It never routes over that
        // direction from the graph (its own channels come from its ChannelManager), so it need not.
        if (!known.node1Policy && node.nodeId !== known.node2) return false;
        if (!known.node2Policy && node.nodeId !== known.node1) return false;
      }
    }
    return true;
  }
}

/**
 * Starts a network: nodes, peer connections, channels (see {@link Network.start}).
 *
 * @example
 * const net = await Network.start({
 *   nodes: ['merchant', 'payer'],
 *   channels: [{ from: 'payer', to: 'merchant', capacitySat: 1_000_000 }],
 *   transport: 'tcp',
 * });
 */
export const start: (options: Options) => Promise<Network> = Network.start;

/**
 * Starts a line of nodes, each with a channel to the next (see {@link Network.line}).
 *
 * @example
 * const net = await Network.line(['a', 'b', 'c']);
 * const invoice = await net.node('c').createInvoice({ amountMsat: 50_000 });
 * await net.node('a').payInvoice(invoice.paymentRequest); // routed through b
 */
export const line: (names: readonly string[], options?: LineOptions) => Promise<Network> = Network.line;
