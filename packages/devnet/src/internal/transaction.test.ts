import { describe, expect, it } from 'vitest';
import { sha256d, toReversedHex } from './bytes.js';
import * as Transaction from './transaction.js';

describe('transaction', () => {
  it('computes a segwit txid over the serialization without witnesses', () => {
    const script = new Uint8Array(34).fill(9);
    const tx = Transaction.funding(script, 1_000_000n);
    expect(tx[4]).toBe(0); // BIP 144 marker
    expect(tx[5]).toBe(1); // and flag
    const inputTxid = tx.subarray(7, 39);
    const legacy = Transaction.encode({
      version: 2,
      inputs: [{ txid: inputTxid, vout: 0, scriptSig: new Uint8Array(0), sequence: 0xffffffff, witness: [] }],
      outputs: [{ value: 1_000_000n, script }],
      locktime: 0,
    });
    expect(Transaction.txid(tx)).toEqual(sha256d(legacy));
    expect(Transaction.txid(legacy)).toEqual(sha256d(legacy));
  });

  it('matches a known transaction: the regtest genesis coinbase', () => {
    const genesisCoinbase = Buffer.from(
      '01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000',
      'hex',
    );
    expect(toReversedHex(Transaction.txid(genesisCoinbase))).toBe(
      '4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b',
    );
  });

  it('writes BIP 34 heights into coinbases', () => {
    expect(Transaction.coinbase(1)[41]).toBe(2); // script length: OP_1, OP_0
    expect(Transaction.coinbase(1)[42]).toBe(0x51);
    const at300 = Transaction.coinbase(300);
    expect([...at300.subarray(41, 46)]).toEqual([4, 2, 0x2c, 0x01, 0]);
    const at128 = Transaction.coinbase(128);
    expect([...at128.subarray(41, 46)]).toEqual([4, 2, 0x80, 0x00, 0]); // sign byte added
  });
});
