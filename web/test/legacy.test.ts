import { readFileSync } from "node:fs";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  type Address,
  bytesToHex,
  hashDomain,
  hashTypedData,
  type Hex,
  hexToBytes,
  keccak256,
  recoverTypedDataAddress,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { utf8 } from "../src/formats/bytes";
import type { KeySuite } from "../src/formats/hpke";
import { deriveLegacyKeyPair, legacyKeyPair, legacyTypedData, normalisedSignature } from "../src/formats/legacy";

interface Case {
  suite: KeySuite;
  epoch: number;
  typedData: unknown;
  domainSeparator: Hex;
  digest: Hex;
  signature: Hex;
  secret: Hex;
  hkdfInfo: string;
  seed: Hex;
  x25519PrivateKey: Hex;
  mlkemSeed: Hex | null;
  publicKey: Hex;
}
const doc = JSON.parse(readFileSync(new URL("../../docs/vectors/keyderivation.json", import.meta.url), "utf8")) as {
  account: { privateKey: Hex; address: Address };
  cases: Case[];
  equivalentSignatures: { suite: KeySuite; epoch: number; publicKey: Hex; signatures: Hex[] };
};

describe("keyderivation.json (legacy)", () => {
  it.each(doc.cases)("$suite epoch $epoch: document, signature, secret, seed, key", async (c) => {
    const json = legacyTypedData(c.suite, c.epoch);
    expect(json).toEqual(c.typedData);
    // viem types uint256 as bigint; the JSON a wallet is sent carries the number.
    const typedData = { ...json, message: { ...json.message, epoch: BigInt(json.message.epoch) } };
    expect(hashDomain({ domain: typedData.domain, types: typedData.types })).toBe(c.domainSeparator);
    expect(hashTypedData(typedData)).toBe(c.digest);
    // What a wallet returns for the document (RFC 6979 signatures are deterministic).
    expect(await privateKeyToAccount(doc.account.privateKey).signTypedData(typedData)).toBe(c.signature);
    expect(await recoverTypedDataAddress({ ...typedData, signature: c.signature })).toBe(doc.account.address);

    const signature = hexToBytes(c.signature);
    expect(keccak256(normalisedSignature(signature))).toBe(c.secret);
    expect(c.hkdfInfo).toBe(`medvault/encryption-key/${c.suite}/epoch-${c.epoch}`);
    expect(bytesToHex(hkdf(sha256, hexToBytes(c.secret), utf8("medvault"), utf8(c.hkdfInfo), 96))).toBe(c.seed);
    const pair = legacyKeyPair(signature, c.suite, c.epoch);
    expect(bytesToHex(pair.privateKey)).toBe(c.x25519PrivateKey + (c.mlkemSeed?.slice(2) ?? ""));
    expect(bytesToHex(pair.publicKey)).toBe(c.publicKey);
    expect(deriveLegacyKeyPair(hexToBytes(c.secret), c.suite, c.epoch).publicKey).toEqual(pair.publicKey);
  });

  it.each(doc.equivalentSignatures.signatures)("the spelling %s derives the same key", (signature) => {
    const { suite, epoch, publicKey } = doc.equivalentSignatures;
    expect(normalisedSignature(hexToBytes(signature))).toEqual(hexToBytes(doc.cases[0]!.signature));
    expect(bytesToHex(legacyKeyPair(hexToBytes(signature), suite, epoch).publicKey)).toBe(publicKey);
  });

  it("refuses other signature lengths and recovery ids", () => {
    const signature = hexToBytes(doc.cases[0]!.signature);
    expect(() => normalisedSignature(signature.subarray(0, 64))).toThrow(RangeError);
    expect(() => normalisedSignature(new Uint8Array([...signature, 0]))).toThrow(RangeError);
    for (const v of [2, 26, 29, 37]) {
      expect(() => normalisedSignature(new Uint8Array([...signature.subarray(0, 64), v]))).toThrow(RangeError);
    }
    expect(() => legacyTypedData("X25519", -1)).toThrow(RangeError);
  });
});
