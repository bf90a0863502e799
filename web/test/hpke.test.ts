import { readFileSync } from "node:fs";
import { shake256 } from "@noble/hashes/sha3.js";
import { ml_kem768_x25519 } from "@noble/post-quantum/hybrid.js";
import { type Address, bytesToHex, type Hex, hexToBytes } from "viem";
import { describe, expect, it } from "vitest";
import { concatBytes, DecryptionError } from "../src/formats/bytes";
import {
  escrowInfo,
  generateKeyPair,
  isLowOrder,
  type KeySuite,
  keyPairFromPrivate,
  openShare,
  parsePublicKey,
  releaseInfo,
  sealShare,
  SUITES,
  unwrapKey,
  UnusableKeyError,
  wrapInfo,
  wrapKey,
} from "../src/formats/hpke";
import { deriveLegacyKeyPair } from "../src/formats/legacy";

interface Recipient {
  suite: KeySuite;
  derivationSecret: Hex;
  x25519PrivateKey: Hex;
  mlkemSeed: Hex | null;
  publicKey: Hex;
}
interface SealCase {
  name: string;
  kind: "wrap" | "escrow" | "release";
  suite: KeySuite;
  recipient: string;
  reader?: Address;
  keeper?: Address;
  x?: number;
  info: Hex;
  plaintext: Hex;
  sealed: Hex;
}
interface FixedCase {
  name: string;
  recipient: string;
  info: Hex;
  ephemeralPrivateKey: Hex;
  plaintext: Hex;
  sealed: Hex;
}
const doc = JSON.parse(readFileSync(new URL("../../docs/vectors/hpke.json", import.meta.url), "utf8")) as {
  suites: {
    name: KeySuite;
    tag: number;
    kemId: number;
    kdfId: number;
    aeadId: number;
    encLength: number;
    publicKeyLength: number;
  }[];
  associatedData: Hex;
  recipients: Record<string, Recipient>;
  cases: SealCase[];
  fixedEphemeral: FixedCase[];
};
const aad = hexToBytes(doc.associatedData);

function pairOf(name: string) {
  const r = doc.recipients[name]!;
  const parts = [hexToBytes(r.x25519PrivateKey), ...(r.mlkemSeed ? [hexToBytes(r.mlkemSeed)] : [])];
  return keyPairFromPrivate(concatBytes(...parts), r.suite);
}

function infoOf(c: SealCase): Uint8Array {
  if (c.kind === "wrap") return wrapInfo(aad, c.reader!);
  if (c.kind === "escrow") return escrowInfo(aad, c.keeper!);
  return releaseInfo(aad, c.reader!, c.keeper!, c.x!);
}

describe("hpke.json", () => {
  it("has the suites' tags, ids and lengths", () => {
    for (const s of doc.suites) {
      const { tag, kemId, kdfId, aeadId, encLength, publicKeyLength } = SUITES[s.name];
      expect({ name: s.name, tag, kemId, kdfId, aeadId, encLength, publicKeyLength }).toEqual(s);
    }
  });

  it.each(Object.entries(doc.recipients))("recipient %s: its public key comes from its private parts", (name, r) => {
    const pair = pairOf(name);
    expect(bytesToHex(pair.publicKey)).toBe(r.publicKey);
    expect(parsePublicKey(pair.publicKey)).toBe(r.suite);
    expect(bytesToHex(deriveLegacyKeyPair(hexToBytes(r.derivationSecret), r.suite, 0).publicKey)).toBe(r.publicKey);
  });

  it.each(doc.cases)("$name: info is the documented ABI encoding and the library seal opens", async (c) => {
    const info = infoOf(c);
    expect(bytesToHex(info)).toBe(c.info);
    expect(info.length).toBe({ wrap: 352, escrow: 448, release: 512 }[c.kind]);
    const pair = pairOf(c.recipient);
    const sealed = hexToBytes(c.sealed);
    expect(sealed.length).toBe(SUITES[c.suite].encLength + 32 + 16);
    expect(bytesToHex(await openShare(sealed, pair, info, c.name))).toBe(c.plaintext);
    if (c.kind === "wrap") expect(bytesToHex(await unwrapKey(sealed, pair, aad, c.reader!))).toBe(c.plaintext);
    await expect(openShare(sealed, pair, concatBytes(info, new Uint8Array(1)), c.name)).rejects.toThrow(DecryptionError);
    const flipped = sealed.slice();
    flipped[flipped.length - 1]! ^= 1;
    await expect(openShare(flipped, pair, info, c.name)).rejects.toThrow(DecryptionError);
    const other = pairOf(c.recipient.startsWith("reader") ? `keeper-1/${c.suite}` : `reader/${c.suite}`);
    await expect(openShare(sealed, other, info, c.name)).rejects.toThrow(DecryptionError);
  });

  it.each(doc.fixedEphemeral)("$name: sealed byte for byte with the given ephemeral key", async (c) => {
    const recipient = hexToBytes(doc.recipients[c.recipient]!.publicKey);
    const info = hexToBytes(c.info);
    const sealed = await sealShare(hexToBytes(c.plaintext), recipient, info, hexToBytes(c.ephemeralPrivateKey));
    expect(bytesToHex(sealed)).toBe(c.sealed);
    expect(bytesToHex(await openShare(sealed, pairOf(c.recipient), info, c.name))).toBe(c.plaintext);
  });
});

describe("seal and open", () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const reader: Address = "0xeD95c093444A29736770cc1a09BAd5532d1575e6";

  it.each(["X25519", "MLKEM768_X25519"] as const)("%s: a random pair opens what is wrapped for it", async (suite) => {
    const pair = generateKeyPair(suite);
    expect(pair.privateKey.length).toBe(SUITES[suite].privateKeyLength);
    expect(pair.publicKey.length).toBe(SUITES[suite].publicKeyLength);
    const wrapped = await wrapKey(key, pair.publicKey, aad, reader);
    expect(wrapped.length).toBe(suite === "X25519" ? 80 : 1168);
    expect(await unwrapKey(wrapped, pair, aad, reader)).toEqual(key);
    await expect(unwrapKey(wrapped, generateKeyPair(suite), aad, reader)).rejects.toThrow(DecryptionError);
    await expect(unwrapKey(wrapped, pair, aad.slice(1), reader)).rejects.toThrow(DecryptionError);
  });

  it("MLKEM768_X25519: a given eseed seals deterministically (X-Wing EncapsulateDerand)", async () => {
    const pair = generateKeyPair("MLKEM768_X25519");
    const info = wrapInfo(aad, reader);
    const eseed = crypto.getRandomValues(new Uint8Array(64));
    const sealed = await sealShare(key, pair.publicKey, info, eseed);
    expect(await sealShare(key, pair.publicKey, info, eseed)).toEqual(sealed);
    expect(await sealShare(key, pair.publicKey, info)).not.toEqual(sealed);
    expect(await openShare(sealed, pair, info, "the seal")).toEqual(key);
  });

  it("MLKEM768_X25519 is X-Wing: @noble/post-quantum's ml_kem768_x25519 agrees on keys, enc and secret", async () => {
    // X-Wing expands its 32-byte seed to d || z || X25519 key; medvault stores X25519 key || d || z.
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const expanded = shake256(seed, { dkLen: 96 });
    const pair = keyPairFromPrivate(concatBytes(expanded.subarray(64), expanded.subarray(0, 64)), "MLKEM768_X25519");
    const xwing = ml_kem768_x25519.keygen(seed);
    expect(pair.publicKey.subarray(1)).toEqual(xwing.publicKey);
    const eseed = crypto.getRandomValues(new Uint8Array(64));
    const sealed = await sealShare(key, pair.publicKey, wrapInfo(aad, reader), eseed);
    const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(xwing.publicKey, eseed);
    expect(sealed.subarray(0, 1120)).toEqual(cipherText);
    expect(ml_kem768_x25519.decapsulate(sealed.subarray(0, 1120), xwing.secretKey)).toEqual(sharedSecret);
  });

  it("refuses to open anything but a 32-byte key", async () => {
    const pair = generateKeyPair("X25519");
    const info = wrapInfo(aad, reader);
    const sealed = await sealShare(key.subarray(1), pair.publicKey, info);
    await expect(openShare(sealed, pair, info, "the short key")).rejects.toThrow(DecryptionError);
    await expect(openShare(sealed.subarray(0, 31), pair, info, "the cut seal")).rejects.toThrow(DecryptionError);
  });
});

/** `published` (an X-Wing key) with its ML-KEM-768 coefficient `i` (of 768; two 12-bit numbers
 * in every 3 bytes, little-endian) set to `value`. */
function withCoefficient(published: Uint8Array, i: number, value: number): Uint8Array {
  const key = published.slice();
  const at = 1 + 3 * (i >> 1);
  if (i % 2 === 0) [key[at], key[at + 1]] = [value & 0xff, (key[at + 1]! & 0xf0) | (value >> 8)];
  else [key[at + 1], key[at + 2]] = [(key[at + 1]! & 0x0f) | ((value & 0x0f) << 4), value >> 4];
  return key;
}

describe("published keys that are refused", () => {
  const x = hexToBytes(doc.recipients["reader/X25519"]!.publicKey);
  const xwing = hexToBytes(doc.recipients["reader/MLKEM768_X25519"]!.publicKey);
  const le = (u: bigint) => hexToBytes(`0x${u.toString(16).padStart(64, "0")}`).reverse();
  const p = 2n ** 255n - 19n;
  const u8 = [
    325606250916557431795983626356110631294008115727848805560023387167927233504n,
    39382357235489614581723060781553021112529911719440698176882885853963445705823n,
  ];
  // Every encoding of a point of order 1, 2, 4 or 8: canonical, + p where that fits, each with the top bit set.
  const canonical = [0n, p, 1n, p + 1n, p - 1n, ...u8];
  const lowOrder = [...canonical, ...canonical.map((u) => u | (1n << 255n))].map(le);

  it("knows the 14 low-order encodings", () => {
    expect(new Set(lowOrder.map((b) => bytesToHex(b))).size).toBe(14);
    expect(lowOrder.every(isLowOrder)).toBe(true);
    expect(isLowOrder(x.subarray(1))).toBe(false);
    expect(isLowOrder(le(2n))).toBe(false);
  });

  const refused: [string, Uint8Array][] = [
    ["empty", new Uint8Array()],
    ["unknown tag 0", concatBytes(new Uint8Array([0]), x.subarray(1))],
    ["unknown tag 3", concatBytes(new Uint8Array([3]), xwing.subarray(1))],
    ["X25519 one byte short", x.subarray(0, 32)],
    ["X25519 one byte long", concatBytes(x, new Uint8Array(1))],
    ["X25519 key with the MLKEM768_X25519 tag", concatBytes(new Uint8Array([2]), x.subarray(1))],
    ["MLKEM768_X25519 one byte short", xwing.subarray(0, -1)],
    ["MLKEM768_X25519 one byte long", concatBytes(xwing, new Uint8Array(1))],
    ...lowOrder.map((u, i): [string, Uint8Array] => [`X25519 low-order encoding ${i}`, concatBytes(x.subarray(0, 1), u)]),
    ...lowOrder.map((u, i): [string, Uint8Array] => [`X-Wing low-order encoding ${i}`, concatBytes(xwing.subarray(0, -32), u)]),
    ...[0, 1, 766, 767].flatMap((i): [string, Uint8Array][] => [
      [`ML-KEM coefficient ${i} = q`, withCoefficient(xwing, i, 3329)],
      [`ML-KEM coefficient ${i} = 4095`, withCoefficient(xwing, i, 4095)],
    ]),
  ];

  it.each(refused)("%s", async (_, published) => {
    expect(() => parsePublicKey(published)).toThrow(UnusableKeyError);
    await expect(sealShare(new Uint8Array(32), published, new Uint8Array())).rejects.toThrow(UnusableKeyError);
  });

  it("accepts coefficients up to q - 1", () => {
    for (const i of [0, 1, 766, 767]) expect(parsePublicKey(withCoefficient(xwing, i, 3328))).toBe("MLKEM768_X25519");
  });
});
