import { readFileSync } from "node:fs";
import { type Address, type Hex, hexToBytes, sha256 } from "viem";
import { describe, expect, it } from "vitest";
import { contentHash, GENESIS, recordHash } from "../src/formats/recordhash";

interface Case {
  previous: Hex;
  patient: Address;
  index: number;
  author: Address;
  seq: number;
  category: number;
  timestamp: number;
  contentHash: Hex;
  cid: Hex;
  keysCid: Hex;
  recordHash: Hex;
}
const vectors = JSON.parse(readFileSync(new URL("../../docs/vectors/recordhash.json", import.meta.url), "utf8")) as {
  cases: Case[];
};

describe("record hash (recordhash.json)", () => {
  it("is a chain from the genesis hash", () => {
    expect(vectors.cases[0]!.previous).toBe(GENESIS);
    expect(vectors.cases[1]!.previous).toBe(vectors.cases[0]!.recordHash);
  });

  it.each(vectors.cases)("hashes record $index (hex fields)", (c) => {
    expect(recordHash(c)).toBe(c.recordHash);
  });

  it.each(vectors.cases)("hashes record $index (byte fields, bigint numbers, as viem decodes events)", (c) => {
    const bytes = { previous: hexToBytes(c.previous), contentHash: hexToBytes(c.contentHash), cid: hexToBytes(c.cid), keysCid: hexToBytes(c.keysCid) };
    const numbers = { index: BigInt(c.index), seq: BigInt(c.seq), timestamp: BigInt(c.timestamp) };
    expect(recordHash({ ...c, ...bytes, ...numbers })).toBe(c.recordHash);
  });

  it("refuses values out of their ABI types", () => {
    const c = vectors.cases[0]!;
    expect(() => recordHash({ ...c, category: 256 })).toThrow();
    expect(() => recordHash({ ...c, seq: 2n ** 64n })).toThrow();
    expect(() => recordHash({ ...c, contentHash: "0x1234" })).toThrow();
  });

  it("contentHash is the SHA-256 of the blob", async () => {
    const blob = new TextEncoder().encode("MVR1 ciphertext");
    expect(await contentHash(blob)).toEqual(hexToBytes(sha256(blob)));
  });
});
