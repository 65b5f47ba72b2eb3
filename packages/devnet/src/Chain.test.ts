import { describe, expect, it } from 'vitest';
import * as Chain from './Chain.js';
import { concat, sha256d, toReversedHex } from './internal/bytes.js';
import * as Transaction from './internal/transaction.js';

const prevHash = (block: Chain.Block) => block.header.subarray(4, 36);
const merkleRoot = (block: Chain.Block) => block.header.subarray(36, 68);

describe('Chain', () => {
  it('starts at the regtest genesis block LDK expects', () => {
    const chain = Chain.create();
    expect(chain.height).toBe(0);
    expect(chain.tip.id).toBe('0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206');
  });

  it('mines linked headers that meet the regtest target, with real merkle roots', () => {
    const chain = Chain.create();
    const blocks = chain.mine(3);
    expect(blocks.map((b) => b.height)).toEqual([1, 2, 3]);
    for (const block of blocks) {
      const previous = chain.block(block.height - 1)!;
      expect(prevHash(block)).toEqual(previous.hash);
      expect(sha256d(block.header)).toEqual(block.hash);
      expect(block.id).toBe(toReversedHex(block.hash));
      expect(block.hash[31]).toBeLessThan(0x80); // regtest bits 0x207fffff
      expect(block.transactions).toHaveLength(1); // the coinbase
      expect(merkleRoot(block)).toEqual(Transaction.txid(block.transactions[0]!));
    }
  });

  it('confirms broadcast transactions in the next block and counts confirmations', () => {
    const chain = Chain.create();
    const tx = Transaction.funding(new Uint8Array(34).fill(1), 50_000n);
    const txid = chain.broadcast(tx);
    expect(chain.broadcast(tx)).toBe(txid); // rebroadcast: still one
    expect(chain.pending()).toEqual([txid]);
    expect(chain.confirmations(txid)).toBe(0);
    const [block] = chain.mine();
    expect(block!.transactions).toHaveLength(2);
    expect(block!.transactions[1]).toEqual(tx);
    const leaves = block!.transactions.map(Transaction.txid);
    expect(merkleRoot(block!)).toEqual(sha256d(concat(leaves[0]!, leaves[1]!)));
    expect(chain.pending()).toEqual([]);
    chain.mine(5);
    expect(chain.confirmations(txid)).toBe(6);
    chain.broadcast(tx); // already confirmed: ignored
    expect(chain.pending()).toEqual([]);
  });

  it('hands every block to listeners until they unsubscribe', () => {
    const chain = Chain.create();
    const seen: number[] = [];
    const stop = chain.subscribe((block) => seen.push(block.height));
    chain.mine(2);
    stop();
    chain.mine();
    expect(seen).toEqual([1, 2]);
  });

  it('takes header times from the clock, never going backwards', () => {
    let clock = 2_000_000_000_000;
    const chain = Chain.create({ now: () => clock });
    expect(chain.mine()[0]!.time).toBe(2_000_000_000);
    clock -= 60_000;
    expect(chain.mine()[0]!.time).toBe(2_000_000_000);
    clock += 3_600_000;
    expect(chain.mine()[0]!.time).toBe(2_000_003_540);
  });

  it('refuses bytes that are not a transaction', () => {
    const chain = Chain.create();
    expect(() => chain.broadcast(Uint8Array.of(1, 2, 3))).toThrow(
      expect.objectContaining({ code: 'DEVNET_INVALID_ARGUMENT' }),
    );
    expect(() => chain.mine(-1)).toThrow(expect.objectContaining({ code: 'DEVNET_INVALID_ARGUMENT' }));
  });
});
