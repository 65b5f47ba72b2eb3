/**
 * An emulated regtest chain: blocks with real, linked 80-byte headers (merkle root, regtest difficulty
 * and proof of work included), a mempool of broadcast transactions, and listeners that every mined
 * block is handed to. Transaction inputs are not validated: the chain exists so LDK sees fundings and
 * closes confirm, not to keep a UTXO set.
 *
 * @example
 * const chain = Chain.create();
 * chain.subscribe((block) => console.log('block', block.height));
 * const txid = chain.broadcast(rawTx);
 * chain.mine(6);
 * chain.confirmations(txid); // 6
 */
import { ArgumentError } from './Errors.js';
import { concat, sha256d, toReversedHex } from './internal/bytes.js';
import * as Transaction from './internal/transaction.js';

/** One block, as the chain hands it to listeners. */
export interface Block {
  readonly height: number;
  /** The block hash in internal byte order, as the next header references it. */
  readonly hash: Uint8Array;
  /** The block hash as Bitcoin displays it (byte-reversed hex). */
  readonly id: string;
  /** The 80-byte header. */
  readonly header: Uint8Array;
  /** Header time, unix seconds. */
  readonly time: number;
  /** Serialized transactions, coinbase first. The genesis block lists none. */
  readonly transactions: readonly Uint8Array[];
}

/** Called with every mined block, in height order. */
export type Listener = (block: Block) => void;

/** What {@link create} takes. */
export interface Options {
  /** Clock for header times, in unix milliseconds. Defaults to `Date.now`. */
  readonly now?: () => number;
}

const REGTEST_BITS = 0x207fffff;

// Bitcoin Core's regtest genesis header; its hash is 0f9188f1…2206, the chain hash LDK expects.
const GENESIS_HEADER = Uint8Array.from(
  Buffer.from(
    '0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000',
    'hex',
  ),
);

function merkleRoot(txids: readonly Uint8Array[]): Uint8Array {
  let level = txids;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2)
      next.push(sha256d(concat(level[i]!, level[i + 1] ?? level[i]!)));
    level = next;
  }
  return level[0] ?? new Uint8Array(32);
}

/** A header that meets the regtest target: half of all hashes do, so this takes two tries on average. */
function mineHeader(
  prev: Uint8Array,
  merkle: Uint8Array,
  time: number,
): { header: Uint8Array; hash: Uint8Array } {
  const header = new Uint8Array(80);
  const view = new DataView(header.buffer);
  view.setUint32(0, 0x20000000, true);
  header.set(prev, 4);
  header.set(merkle, 36);
  view.setUint32(68, time, true);
  view.setUint32(72, REGTEST_BITS, true);
  for (let nonce = 0; ; nonce++) {
    view.setUint32(76, nonce, true);
    const hash = sha256d(header);
    // The hash read as a little-endian number stays under 0x7fffff·2^232 when its top byte is < 0x7f.
    if (hash[31]! < 0x7f) return { header, hash };
  }
}

function block(height: number, header: Uint8Array, hash: Uint8Array, transactions: Uint8Array[]): Block {
  const time = new DataView(header.buffer, header.byteOffset).getUint32(68, true);
  return Object.freeze({ height, hash, id: toReversedHex(hash), header, time, transactions });
}

/** An emulated regtest chain. Create one with {@link create}. */
export class Chain {
  private readonly now: () => number;
  private readonly blocks: Block[];
  private readonly mempool = new Map<string, Uint8Array>();
  private readonly confirmedAt = new Map<string, number>();
  private readonly listeners = new Set<Listener>();

  constructor(options: Options = {}) {
    this.now = options.now ?? Date.now;
    this.blocks = [block(0, GENESIS_HEADER, sha256d(GENESIS_HEADER), [])];
  }

  /** Height of the best block (0 = genesis). */
  get height(): number {
    return this.blocks.length - 1;
  }

  /** The best block. */
  get tip(): Block {
    return this.blocks.at(-1)!;
  }

  /** The block at `height`, if mined. */
  block(height: number): Block | undefined {
    return this.blocks[height];
  }

  /** Txids waiting for the next block, in broadcast order. */
  pending(): string[] {
    return [...this.mempool.keys()];
  }

  /**
   * Adds a transaction to the mempool (once: rebroadcasts of a pending or confirmed transaction are
   * ignored) and returns its txid. It confirms in the next mined block.
   */
  broadcast(raw: Uint8Array): string {
    const txid = toReversedHex(Transaction.txid(raw));
    if (!this.confirmedAt.has(txid) && !this.mempool.has(txid)) this.mempool.set(txid, Uint8Array.from(raw));
    return txid;
  }

  /** 0 while pending or unknown, 1 once in the best block, and one more per block on top. */
  confirmations(txid: string): number {
    const height = this.confirmedAt.get(txid);
    return height === undefined ? 0 : this.height - height + 1;
  }

  /**
   * Mines `count` blocks, the first carrying every pending transaction, and hands each block to every
   * listener before mining the next. Header times follow the clock and never go backwards.
   */
  mine(count = 1): Block[] {
    if (!Number.isSafeInteger(count) || count < 0)
      throw new ArgumentError('block count must be a whole number ≥ 0');
    const mined: Block[] = [];
    for (let i = 0; i < count; i++) {
      const height = this.blocks.length;
      const transactions = [Transaction.coinbase(height), ...this.mempool.values()];
      for (const txid of this.mempool.keys()) this.confirmedAt.set(txid, height);
      this.mempool.clear();
      const time = Math.max(this.tip.time, Math.floor(this.now() / 1000));
      const { header, hash } = mineHeader(
        this.tip.hash,
        merkleRoot(transactions.map(Transaction.txid)),
        time,
      );
      const next = block(height, header, hash, transactions);
      this.blocks.push(next);
      mined.push(next);
      for (const listener of this.listeners) listener(next);
    }
    return mined;
  }

  /** Calls `listener` with every block mined from now on; returns the function that stops it. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * A new chain holding only the regtest genesis block.
 *
 * @example
 * const chain = Chain.create({ now: () => Date.now() });
 */
export function create(options: Options = {}): Chain {
  return new Chain(options);
}
