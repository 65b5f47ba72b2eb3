/**
 * A Nostr relay on loopback (NIP-01), for Nostr Wallet Connect on the devnet: EVENT (id and BIP-340
 * signature checked, answered with OK true or false and a reason), REQ with filters (ids, authors,
 * kinds, tags, since, until, limit), EOSE, CLOSE, CLOSED and NOTICE. Events live in memory: ephemeral
 * kinds (20000–29999, NIP-47's requests, answers and notifications) are relayed and never stored;
 * replaceable ones (0, 3, 10000–19999, such as NIP-47's 13194 info event) keep the newest per author and
 * kind, addressable ones (30000–39999) per author, kind and `d` tag.
 *
 * @example
 * const relay = await Relay.start();
 * relay.url; // "ws://127.0.0.1:41873"
 * const wallet = await Nwc.serve(net.node('merchant'), { relayUrl: relay.url });
 * await relay.close();
 */
import type { AddressInfo } from 'node:net';
import { Nostr } from 'l402/lightning';
import { type WebSocket, WebSocketServer } from 'ws';
import { ArgumentError, PeerError } from '../Errors.js';

/**
 * Where the relay listens and how much it holds.
 *
 * @example
 * const relay = await Relay.start({ port: 7000, maxEvents: 1_000 });
 */
export interface Options {
  /** Defaults to 127.0.0.1. */
  readonly host?: string;
  /** Defaults to 0: a free port. */
  readonly port?: number;
  /** Stored events kept, oldest dropped first. Defaults to 10 000. */
  readonly maxEvents?: number;
  /** Largest message accepted; NIP-47 asks relays for 64 KiB at least. Defaults to 1 MiB. */
  readonly maxMessageBytes?: number;
  /** Open subscriptions per connection. Defaults to 64. */
  readonly maxSubscriptions?: number;
}

type Subscriptions = Map<string, readonly Nostr.Filter[]>;

/** Newest first; among events of the same second, the lowest id first (NIP-01). */
const newestFirst = (a: Nostr.Event, b: Nostr.Event) =>
  b.created_at - a.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function classify(kind: number): 'ephemeral' | 'replaceable' | 'addressable' | 'regular' {
  if (kind >= 20000 && kind < 30000) return 'ephemeral';
  if (kind === 0 || kind === 3 || (kind >= 10000 && kind < 20000)) return 'replaceable';
  if (kind >= 30000 && kind < 40000) return 'addressable';
  return 'regular';
}

/** The text of a l402 error without its `nostr: ` prefix, for a relay's machine-readable reasons. */
function reason(error: unknown): string {
  const { message, backend } = error as { message?: string; backend?: string };
  const text = String(message ?? error);
  return backend && text.startsWith(`${backend}: `) ? text.slice(backend.length + 2) : text;
}

/**
 * A running relay. Start one with {@link start}.
 *
 * @example
 * const relay: Relay.Relay = await Relay.start();
 */
export class Relay {
  /** `ws://host:port`. */
  readonly url: string;
  readonly port: number;
  private readonly server: WebSocketServer;
  private readonly clients = new Map<WebSocket, Subscriptions>();
  /** Stored events by id, oldest first. */
  private readonly stored = new Map<string, Nostr.Event>();
  /** Replaceable and addressable events: their key → the id of the version kept. */
  private readonly latest = new Map<string, string>();
  private readonly maxEvents: number;
  private readonly maxSubscriptions: number;

  private constructor(server: WebSocketServer, host: string, options: Options) {
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.url = `ws://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
    this.maxEvents = options.maxEvents ?? 10_000;
    this.maxSubscriptions = options.maxSubscriptions ?? 64;
    server.on('connection', (socket) => this.accept(socket));
  }

  /**
   * Listens on loopback (a free port unless told otherwise).
   *
   * @example
   * const relay = await Relay.Relay.start({ port: 7000 });
   */
  static async start(options: Options = {}): Promise<Relay> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new ArgumentError('port must be 0 to 65535');
    }
    for (const [name, value] of Object.entries({
      maxEvents: options.maxEvents,
      maxMessageBytes: options.maxMessageBytes,
      maxSubscriptions: options.maxSubscriptions,
    })) {
      if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
        throw new ArgumentError(`${name} must be a whole number ≥ 1`);
      }
    }
    const server = new WebSocketServer({ host, port, maxPayload: options.maxMessageBytes ?? 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', (error) =>
        reject(new PeerError(`cannot listen on ${host}:${port}`, { cause: error })),
      );
    });
    return new Relay(server, host, options);
  }

  /**
   * The stored events, newest first (ephemeral ones are never stored).
   *
   * @example
   * relay.events().filter((e) => e.kind === 13194); // the wallet services' info events
   */
  events(): Nostr.Event[] {
    return [...this.stored.values()].sort(newestFirst);
  }

  /**
   * Disconnects every client and stops listening.
   *
   * @example
   * await relay.close();
   */
  async close(): Promise<void> {
    for (const socket of this.clients.keys()) socket.terminate();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: WebSocket): void {
    this.clients.set(socket, new Map());
    socket.on('message', (data, isBinary) => {
      if (isBinary) return this.send(socket, ['NOTICE', 'invalid: messages are JSON text']);
      this.receive(socket, data.toString());
    });
    socket.on('close', () => this.clients.delete(socket));
    // A client that vanishes mid-frame (or sends too much) is simply dropped.
    socket.on('error', () => socket.terminate());
  }

  private send(socket: WebSocket, message: unknown[]): void {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  }

  private receive(socket: WebSocket, text: string): void {
    const reply = this.answer(socket, text);
    if (reply) this.send(socket, reply);
  }

  /** Acts on one message and returns the reply owed, if any (EOSE and stored events are sent as found). */
  private answer(socket: WebSocket, text: string): unknown[] | undefined {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return ['NOTICE', 'invalid: not JSON'];
    }
    if (!Array.isArray(message)) return ['NOTICE', 'invalid: a message is a JSON array'];
    const [type, ...rest] = message as unknown[];
    if (type === 'EVENT') return this.publish(rest[0]);
    if (type === 'REQ') return this.subscribe(socket, rest[0], rest.slice(1));
    if (type === 'CLOSE') {
      if (typeof rest[0] !== 'string') return ['NOTICE', 'invalid: CLOSE needs a subscription id'];
      this.clients.get(socket)?.delete(rest[0]);
      return undefined;
    }
    return ['NOTICE', `invalid: unknown message type ${JSON.stringify(type)}`];
  }

  /** Checks an event, stores it as its kind says, passes it on to matching subscriptions; returns the OK. */
  private publish(value: unknown): unknown[] {
    const claimedId = (value as { id?: unknown } | null)?.id;
    const id = typeof claimedId === 'string' ? claimedId : '';
    let event: Nostr.Event;
    try {
      event = Nostr.parseEvent(value);
    } catch (error) {
      return ['OK', id, false, `invalid: ${reason(error)}`];
    }
    if (Nostr.eventId(event) !== event.id) {
      return ['OK', id, false, 'invalid: the event id is not the hash of its content'];
    }
    if (!Nostr.verify(event)) return ['OK', id, false, 'invalid: bad signature'];
    if (this.stored.has(id)) return ['OK', id, true, 'duplicate: already have this event'];

    const kind = classify(event.kind);
    if (kind === 'replaceable' || kind === 'addressable') {
      const d = kind === 'addressable' ? (event.tags.find((t) => t[0] === 'd')?.[1] ?? '') : '';
      const key = `${event.kind}:${event.pubkey}:${d}`;
      const current = this.stored.get(this.latest.get(key) ?? '');
      if (current && newestFirst(current, event) < 0) {
        return ['OK', id, true, 'duplicate: a newer version is stored'];
      }
      if (current) this.stored.delete(current.id);
      this.latest.set(key, id);
    }
    if (kind !== 'ephemeral') this.store(event);
    for (const [client, subscriptions] of this.clients) {
      for (const [subscription, filters] of subscriptions) {
        if (filters.some((filter) => Nostr.matches(filter, event))) {
          this.send(client, ['EVENT', subscription, event]);
        }
      }
    }
    return ['OK', id, true, ''];
  }

  private store(event: Nostr.Event): void {
    this.stored.set(event.id, event);
    for (const [id, oldest] of this.stored) {
      if (this.stored.size <= this.maxEvents) break;
      this.stored.delete(id);
      for (const [key, kept] of this.latest) if (kept === oldest.id) this.latest.delete(key);
    }
  }

  /** Opens (or replaces) a subscription and sends the stored events it matches; returns EOSE or the refusal. */
  private subscribe(socket: WebSocket, id: unknown, rawFilters: unknown[]): unknown[] | undefined {
    const subscriptions = this.clients.get(socket);
    if (!subscriptions) return undefined;
    if (typeof id !== 'string' || id.length === 0 || id.length > 64) {
      return ['NOTICE', 'invalid: a subscription id is a string of 1 to 64 characters'];
    }
    let filters: Nostr.Filter[];
    try {
      filters = rawFilters.map(Nostr.parseFilter);
    } catch (error) {
      return ['CLOSED', id, `invalid: ${reason(error)}`];
    }
    if (filters.length === 0) return ['CLOSED', id, 'invalid: a REQ needs at least one filter'];
    if (!subscriptions.has(id) && subscriptions.size >= this.maxSubscriptions) {
      return ['CLOSED', id, `blocked: at most ${this.maxSubscriptions} open subscriptions`];
    }
    subscriptions.set(id, filters);
    const all = this.events();
    const found = new Map<string, Nostr.Event>();
    for (const filter of filters) {
      const matching = all.filter((event) => Nostr.matches(filter, event));
      for (const event of filter.limit === undefined ? matching : matching.slice(0, filter.limit)) {
        found.set(event.id, event);
      }
    }
    for (const event of [...found.values()].sort(newestFirst)) this.send(socket, ['EVENT', id, event]);
    return ['EOSE', id];
  }
}

/**
 * Starts a relay (see {@link Relay.start}).
 *
 * @example
 * const relay = await Relay.start();
 * // hand relay.url to Nwc.serve and to NWC clients
 */
export const start: (options?: Options) => Promise<Relay> = Relay.start;
