import { readFileSync } from "node:fs";
import { type Hex, hexToBytes } from "viem";
import { describe, expect, it } from "vitest";
import { combineKey, type KeyShare, splitKey } from "../src/formats/shamir";

interface Case {
  key: Hex;
  threshold: number;
  count: number;
  coefficientsLow: Hex[];
  coefficientsHigh: Hex[];
  shares: { x: number; share: Hex }[];
}
const vectors = JSON.parse(readFileSync(new URL("../../docs/vectors/shamir.json", import.meta.url), "utf8")) as {
  cases: Case[];
};
const sharesOf = (c: Case): KeyShare[] => c.shares.map((s) => ({ x: s.x, share: hexToBytes(s.share) }));

/** Every `size`-element subset of `items`, in order. */
function subsets<T>(items: T[], size: number): T[][] {
  if (size === 0) return [[]];
  return items.flatMap((item, i) => subsets(items.slice(i + 1), size - 1).map((rest) => [item, ...rest]));
}

describe("Shamir sharing of a record key (shamir.json)", () => {
  it.each(vectors.cases)("splits $threshold-of-$count with the vector's coefficients", (c) => {
    // The random source hands out the coefficients in the order PyCryptodome draws them.
    const coefficients = [...c.coefficientsLow, ...c.coefficientsHigh].map((h) => hexToBytes(h));
    const random = (length: number) => {
      const next = coefficients.shift();
      expect(next?.length).toBe(length);
      return next!;
    };
    expect(splitKey(hexToBytes(c.key), c.threshold, c.count, random)).toEqual(sharesOf(c));
    expect(coefficients).toEqual([]);
  });

  it.each(vectors.cases)("any $threshold of the $count shares rebuild the key", (c) => {
    for (const size of [c.threshold, c.count]) {
      for (const subset of subsets(sharesOf(c), size)) expect(combineKey(subset)).toEqual(hexToBytes(c.key));
      for (const subset of subsets(sharesOf(c), size)) expect(combineKey(subset.reverse())).toEqual(hexToBytes(c.key));
    }
  });

  it("fewer than the threshold give another key", () => {
    const c = vectors.cases[1]!;
    expect(combineKey(sharesOf(c).slice(0, 2))).not.toEqual(hexToBytes(c.key));
  });

  it("round-trips with fresh randomness", () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    const shares = splitKey(key, 3, 5);
    expect(combineKey([shares[4]!, shares[0]!, shares[2]!])).toEqual(key);
  });
});

describe("Shamir refusals (as medvault.escrow refuses)", () => {
  const key = new Uint8Array(32).fill(1);
  const share = (x: number, length = 32): KeyShare => ({ x, share: new Uint8Array(length) });

  it.each([
    ["a key of 16 bytes", () => splitKey(new Uint8Array(16), 2, 3)],
    ["threshold 0", () => splitKey(key, 0, 3)],
    ["threshold above count", () => splitKey(key, 4, 3)],
    ["256 shares", () => splitKey(key, 2, 256)],
    ["no shares", () => combineKey([])],
    ["a duplicate x", () => combineKey([share(1), share(1)])],
    ["x = 0", () => combineKey([share(0), share(1)])],
    ["x = 256", () => combineKey([share(256), share(1)])],
    ["a 31-byte share", () => combineKey([share(1, 31), share(2)])],
    ["a single malformed share", () => combineKey([share(1, 31)])],
  ])("refuses %s", (_, call) => {
    expect(call).toThrow(RangeError);
  });
});
