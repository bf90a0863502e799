// t-of-n escrow of a record key among keepers (docs/FORMATS.md, "Escrow: Shamir sharing of a
// record key"; Python: medvault.escrow on PyCryptodome's Shamir, ssss=False). The key's two 16-byte
// halves are shared separately over GF(2^128) with the same x = 1..n; share x is y_low || y_high.
// Shares carry no integrity check: a wrong combination gives a wrong key, which the record's GCM
// tag then rejects.

import { concatBytes } from "./bytes";

export interface KeyShare {
  x: number;
  share: Uint8Array;
}

const KEY_LENGTH = 32;
const HALF = 16;
const MAX_SHARES = 255;

/**
 * `count` shares of `key`, any `threshold` of which rebuild it. `random(16)` gives each
 * coefficient, drawn as PyCryptodome draws them: for the low half then the high half, the
 * highest degree first (shamir.json lists them in that order).
 */
export function splitKey(
  key: Uint8Array,
  threshold: number,
  count: number,
  random: (length: number) => Uint8Array = (length) => crypto.getRandomValues(new Uint8Array(length)),
): KeyShare[] {
  if (key.length !== KEY_LENGTH) throw new RangeError(`a record key has ${KEY_LENGTH} bytes, this one ${key.length}`);
  const whole = Number.isInteger(threshold) && Number.isInteger(count);
  if (!(whole && 1 <= threshold && threshold <= count && count <= MAX_SHARES)) {
    throw new RangeError(`need 1 <= threshold <= count <= ${MAX_SHARES}, got threshold ${threshold} of ${count}`);
  }
  const coefficients = () => Array.from({ length: threshold - 1 }, () => element(random(HALF)));
  const low = [...coefficients(), element(key.subarray(0, HALF))];
  const high = [...coefficients(), element(key.subarray(HALF))];
  // Horner, highest degree first; with threshold 1 every share is the key itself.
  const evaluate = (polynomial: bigint[], x: bigint) => polynomial.reduce((y, c) => multiply(y, x) ^ c, 0n);
  return Array.from({ length: count }, (_, i) => {
    const x = BigInt(i + 1);
    return { x: i + 1, share: concatBytes(encode(evaluate(low, x)), encode(evaluate(high, x))) };
  });
}

/**
 * The key from `threshold` (or more) distinct shares, by Lagrange interpolation at 0. RangeError
 * for no shares, a duplicate x, an x outside 1..255 or a share of another length than 32 bytes.
 */
export function combineKey(shares: readonly KeyShare[]): Uint8Array {
  if (shares.length === 0) throw new RangeError("no key shares");
  const xs = shares.map((s) => s.x);
  if (new Set(xs).size !== xs.length) throw new RangeError(`duplicate key shares (x = ${xs.sort((a, b) => a - b)})`);
  for (const { x, share } of shares) {
    if (!(Number.isInteger(x) && 1 <= x && x <= MAX_SHARES) || share.length !== KEY_LENGTH) {
      throw new RangeError(`malformed key share (x = ${x}, ${share.length} bytes)`);
    }
  }
  if (shares.length === 1) return shares[0]!.share.slice();
  const half = (from: number) => {
    const points = shares.map((s) => [BigInt(s.x), element(s.share.subarray(from, from + HALF))] as const);
    let secret = 0n;
    for (const [xj, yj] of points) {
      let numerator = 1n;
      let denominator = 1n;
      for (const [xm] of points) {
        if (xm === xj) continue;
        numerator = multiply(numerator, xm);
        denominator = multiply(denominator, xj ^ xm); // x_j - x_m: subtraction is addition
      }
      secret ^= multiply(yj, multiply(numerator, inverse(denominator)));
    }
    return encode(secret);
  };
  return concatBytes(half(0), half(HALF));
}

// GF(2^128) modulo x^128 + x^7 + x^2 + x + 1; a 16-byte string is a big-endian integer whose bit i
// is the coefficient of x^i (PyCryptodome's convention, not GCM's bit-reflected one).
const REDUCTION = 0x87n; // x^7 + x^2 + x + 1: what x^128 is congruent to
const TOP = 1n << 127n;
const MASK = (1n << 128n) - 1n;

function element(bytes: Uint8Array): bigint {
  return bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}

function encode(value: bigint): Uint8Array {
  return Uint8Array.from({ length: HALF }, (_, i) => Number((value >> BigInt(8 * (HALF - 1 - i))) & 0xffn));
}

function multiply(a: bigint, b: bigint): bigint {
  let product = 0n;
  for (; b > 0n; b >>= 1n) {
    if (b & 1n) product ^= a;
    a = a & TOP ? ((a << 1n) & MASK) ^ REDUCTION : a << 1n;
  }
  return product;
}

/** a^(2^128 - 2), the inverse of a non-zero a (the denominators are: the x are distinct). */
function inverse(a: bigint): bigint {
  let result = 1n;
  for (let i = 1; i < 128; i++) {
    a = multiply(a, a);
    result = multiply(result, a);
  }
  return result;
}
