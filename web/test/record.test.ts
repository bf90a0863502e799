import { readFileSync } from "node:fs";
import { type Hex, hexToBytes } from "viem";
import { describe, expect, it } from "vitest";
import { DecryptionError, IntegrityError } from "../src/formats/bytes";
import { associatedData, newRecordKey, openRecord, type RecordContext, sealRecord } from "../src/formats/record";

interface Case {
  context: RecordContext;
  associatedData: Hex;
  key: Hex;
  nonce: Hex;
  plaintext: Hex;
  ciphertext: Hex;
}
interface MustFail {
  why: string;
  context: RecordContext;
  key: Hex;
  ciphertext: Hex;
  error: "DecryptionError" | "IntegrityError";
}
const vectors = JSON.parse(readFileSync(new URL("../../docs/vectors/record.json", import.meta.url), "utf8")) as {
  cases: Case[];
  mustFail: MustFail[];
};
const ERRORS = { DecryptionError, IntegrityError };

describe("record ciphertext (record.json)", () => {
  it.each(vectors.cases)("associated data of chain $context.chainId, seq $context.seq", (c) => {
    expect(associatedData(c.context)).toEqual(hexToBytes(c.associatedData));
  });

  it.each(vectors.cases)("seals to the vector with its nonce, seq $context.seq", async (c) => {
    const sealed = await sealRecord(hexToBytes(c.plaintext), hexToBytes(c.key), c.context, hexToBytes(c.nonce));
    expect(sealed).toEqual(hexToBytes(c.ciphertext));
  });

  it.each(vectors.cases)("opens to the plaintext, seq $context.seq", async (c) => {
    const opened = await openRecord(hexToBytes(c.ciphertext), hexToBytes(c.key), c.context);
    expect(opened).toEqual(hexToBytes(c.plaintext));
  });

  it.each(vectors.mustFail)("refuses: $why", async (c) => {
    const opening = openRecord(hexToBytes(c.ciphertext), hexToBytes(c.key), c.context);
    await expect(opening).rejects.toThrow(ERRORS[c.error]);
    if (c.error === "IntegrityError") await expect(opening).rejects.not.toThrow(DecryptionError);
  });

  it("refuses another key, a short blob, and each altered byte", async () => {
    const c = vectors.cases[0]!;
    const blob = hexToBytes(c.ciphertext);
    await expect(openRecord(blob, newRecordKey(), c.context)).rejects.toThrow(DecryptionError);
    await expect(openRecord(blob.subarray(0, 31), hexToBytes(c.key), c.context)).rejects.toThrow(IntegrityError);
    for (let i = 4; i < blob.length; i++) {
      const altered = blob.slice();
      altered[i]! ^= 1;
      await expect(openRecord(altered, hexToBytes(c.key), c.context)).rejects.toThrow(DecryptionError);
    }
  });

  it("round-trips under a fresh key and nonce", async () => {
    const c = vectors.cases[0]!;
    const key = newRecordKey();
    const sealed = await sealRecord(hexToBytes(c.plaintext), key, c.context);
    expect(await openRecord(sealed, key, c.context)).toEqual(hexToBytes(c.plaintext));
  });
});
