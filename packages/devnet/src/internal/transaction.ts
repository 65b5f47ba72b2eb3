/**
 * Just enough of Bitcoin's transaction format for an emulated chain: serialize the two kinds of
 * transaction the devnet makes itself (coinbases and channel fundings) and compute the txid of any
 * transaction LDK broadcasts (commitment, closing, HTLC and sweep transactions, segwit or not).
 */
import { randomBytes } from 'node:crypto';
import { ArgumentError } from '../Errors.js';
import { concat, sha256d } from './bytes.js';

export interface Input {
  /** Previous txid in internal byte order. */
  readonly txid: Uint8Array;
  readonly vout: number;
  readonly scriptSig: Uint8Array;
  readonly sequence: number;
  readonly witness: readonly Uint8Array[];
}

export interface Output {
  readonly value: bigint;
  readonly script: Uint8Array;
}

export interface Transaction {
  readonly version: number;
  readonly inputs: readonly Input[];
  readonly outputs: readonly Output[];
  readonly locktime: number;
}

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, true);
  return out;
}

function u64(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

function varint(n: number): Uint8Array {
  if (n < 0xfd) return Uint8Array.of(n);
  if (n <= 0xffff) return Uint8Array.of(0xfd, n & 0xff, n >>> 8);
  return concat(Uint8Array.of(0xfe), u32(n));
}

const withLength = (bytes: Uint8Array) => concat(varint(bytes.length), bytes);

/** BIP 144 serialization when any input has a witness, the legacy one otherwise. */
export function encode(tx: Transaction): Uint8Array {
  const segwit = tx.inputs.some((input) => input.witness.length > 0);
  const body = [
    varint(tx.inputs.length),
    ...tx.inputs.map((i) => concat(i.txid, u32(i.vout), withLength(i.scriptSig), u32(i.sequence))),
    varint(tx.outputs.length),
    ...tx.outputs.map((o) => concat(u64(o.value), withLength(o.script))),
  ];
  const witness = segwit
    ? tx.inputs.map((i) => concat(varint(i.witness.length), ...i.witness.map(withLength)))
    : [];
  return concat(
    u32(tx.version),
    ...(segwit ? [Uint8Array.of(0, 1)] : []),
    ...body,
    ...witness,
    u32(tx.locktime),
  );
}

/**
 * The txid (internal byte order) of a serialized transaction: the hash of it without witnesses.
 * Throws an {@link ArgumentError} for bytes that do not parse as one.
 */
export function txid(raw: Uint8Array): Uint8Array {
  try {
    return strippedHash(raw);
  } catch {
    throw new ArgumentError('not a serialized Bitcoin transaction');
  }
}

function strippedHash(raw: Uint8Array): Uint8Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const segwit = raw[4] === 0 && raw[5] === 1;
  let at = segwit ? 6 : 4;
  // Moves past `n` bytes; bounded, so a bogus count cannot send the loops below spinning.
  const skip = (n: number) => {
    at += n;
    if (at > raw.length) throw new RangeError('truncated transaction');
  };
  const varint = () => {
    skip(1);
    const first = raw[at - 1]!;
    if (first < 0xfd) return first;
    const size = first === 0xfd ? 2 : first === 0xfe ? 4 : 8;
    skip(size);
    if (size === 2) return view.getUint16(at - 2, true);
    if (size === 4) return view.getUint32(at - 4, true);
    return Number(view.getBigUint64(at - 8, true));
  };
  const bodyStart = at;
  const inputs = varint();
  for (let i = 0; i < inputs; i++) {
    skip(36);
    skip(varint() + 4);
  }
  const outputs = varint();
  for (let i = 0; i < outputs; i++) {
    skip(8);
    skip(varint());
  }
  const bodyEnd = at;
  if (segwit) {
    for (let i = 0; i < inputs; i++) {
      const items = varint();
      for (let j = 0; j < items; j++) skip(varint());
    }
  }
  if (at + 4 !== raw.length) throw new RangeError('trailing or missing bytes');
  return sha256d(concat(raw.subarray(0, 4), raw.subarray(bodyStart, bodyEnd), raw.subarray(at)));
}

/**
 * A coinbase for `height`: the BIP 34 height push, and one zero-value anyone-can-spend output (the
 * devnet models no block reward; channel funding comes from {@link funding}).
 */
export function coinbase(height: number): Uint8Array {
  // Script numbers as Bitcoin Core's `CScript() << height`: OP_1..OP_16 for small heights, else a
  // minimal little-endian push (with a zero byte when the top bit would read as a sign).
  let push: Uint8Array;
  if (height >= 1 && height <= 16) push = Uint8Array.of(0x50 + height);
  else {
    const digits: number[] = [];
    for (let n = height; n > 0; n = Math.floor(n / 256)) digits.push(n % 256);
    if ((digits.at(-1) ?? 0) & 0x80) digits.push(0);
    push = Uint8Array.of(digits.length, ...digits);
  }
  return encode({
    version: 2,
    inputs: [
      {
        txid: new Uint8Array(32),
        vout: 0xffffffff,
        scriptSig: concat(push, Uint8Array.of(0)),
        sequence: 0xffffffff,
        witness: [],
      },
    ],
    outputs: [{ value: 0n, script: Uint8Array.of(0x51) }],
    locktime: 0,
  });
}

/**
 * A channel funding transaction paying `valueSat` to LDK's 2-of-2 `script`. Its single input spends a
 * random, nonexistent outpoint with a placeholder witness: the emulated chain does not validate inputs,
 * and LDK only checks that the funding transaction is segwit and pays the script it asked for.
 */
export function funding(script: Uint8Array, valueSat: bigint): Uint8Array {
  return encode({
    version: 2,
    inputs: [
      {
        txid: new Uint8Array(randomBytes(32)),
        vout: 0,
        scriptSig: new Uint8Array(0),
        sequence: 0xffffffff,
        witness: [Uint8Array.of(0xff)],
      },
    ],
    outputs: [{ value: valueSat, script }],
    locktime: 0,
  });
}
