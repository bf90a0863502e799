import { readFileSync } from "node:fs";
import { hkdf } from "@noble/hashes/hkdf.js";
import { scrypt } from "@noble/hashes/scrypt.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Address, bytesToHex, type Hex, hexToBytes, keccak256 } from "viem";
import { describe, expect, it } from "vitest";
import { concatBytes, IntegrityError, KeystoreError, utf8, WrongPassphraseError } from "../src/formats/bytes";
import { keyPairFromPrivate, suiteOfTag } from "../src/formats/hpke";
import {
  ACCOUNT_KEY,
  addEpoch,
  exportBackup,
  FLAG_LEGACY,
  heldPairs,
  importBackup,
  type KeyEntry,
  mergeKeys,
  nextEpoch,
  openKeyFile,
  readHeader,
  Sealer,
} from "../src/formats/keyfile";

interface Case {
  name: string;
  address: Address;
  kdf: { name: "scrypt"; log2N: number; r: number; p: number; salt: Hex } | { name: "secret"; secret: Hex; salt: Hex };
  sealingKey: Hex;
  aesKey: Hex;
  check: Hex;
  header: Hex;
  entries: { kind: number; epoch: number; flags: number; secret: Hex; nonce: Hex; publicKey?: Hex }[];
  file: Hex;
}
const doc = JSON.parse(readFileSync(new URL("../../docs/vectors/keyfile.json", import.meta.url), "utf8")) as {
  passphrase: string;
  cases: Case[];
  mustFail: { why: string; passphrase: string; file: Hex }[];
};
const { passphrase } = doc;
const secretOf = (c: Case) => (c.kdf.name === "scrypt" ? passphrase : hexToBytes(c.kdf.secret));
const entriesOf = (c: Case): KeyEntry[] =>
  c.entries.map(({ kind, epoch, flags, secret }) => ({ kind, epoch, flags, secret: hexToBytes(secret) }));
const hexEntries = (entries: KeyEntry[]) => entries.map((e) => ({ ...e, secret: bytesToHex(e.secret) }));
const TEST_KEY = keccak256(utf8("medvault test vector/patient")); // the backup's account key
const [keyFile, passkeyFile, backup] = doc.cases as [Case, Case, Case];

describe("keyfile.json", () => {
  it.each(doc.cases)("$name: opens to its entries and reseals byte for byte", async (c) => {
    const data = hexToBytes(c.file);
    const { header, sealer, entries } = await openKeyFile(data, secretOf(c), c.name);
    expect(bytesToHex(header.address)).toBe(c.address.toLowerCase());
    expect(header.count).toBe(c.entries.length);
    expect(bytesToHex(data.subarray(0, 63))).toBe(c.header);
    expect(bytesToHex(header.check)).toBe(c.check);
    expect(hexEntries(entries)).toEqual(c.entries.map(({ kind, epoch, flags, secret }) => ({ kind, epoch, flags, secret })));
    for (const [i, e] of entries.entries()) {
      if (e.kind !== ACCOUNT_KEY) {
        expect(bytesToHex(keyPairFromPrivate(e.secret, suiteOfTag(e.kind)!).publicKey)).toBe(c.entries[i]!.publicKey);
      }
    }
    const nonces = c.entries.map((e) => hexToBytes(e.nonce));
    expect(bytesToHex(await sealer.seal(header.address, entries, nonces))).toBe(c.file);
  });

  it.each(doc.cases)("$name: sealed from scratch, its KDF and HKDF outputs as documented", async (c) => {
    const salt = hexToBytes(c.kdf.salt);
    const sealer =
      c.kdf.name === "scrypt"
        ? await Sealer.fromPassphrase(passphrase, { log2N: c.kdf.log2N, r: c.kdf.r, p: c.kdf.p, salt })
        : await Sealer.fromSecret(hexToBytes(c.kdf.secret), { salt });
    const data = await sealer.seal(hexToBytes(c.address), entriesOf(c), c.entries.map((e) => hexToBytes(e.nonce)));
    expect(bytesToHex(data)).toBe(c.file);

    // Independently of keyfile.ts: the sealing key, the two HKDF outputs, entry 0 under WebCrypto.
    const sealing =
      c.kdf.name === "scrypt"
        ? scrypt(utf8(passphrase), salt, { N: 2 ** c.kdf.log2N, r: c.kdf.r, p: c.kdf.p, dkLen: 32 })
        : hkdf(sha256, hexToBytes(c.kdf.secret), salt, utf8("medvault/keyfile/v1 secret"), 32);
    expect(bytesToHex(sealing)).toBe(c.sealingKey);
    expect(bytesToHex(hkdf(sha256, sealing, new Uint8Array(32), utf8("medvault/keyfile/v1 aes-256-gcm"), 32))).toBe(c.aesKey);
    expect(bytesToHex(hkdf(sha256, sealing, undefined, utf8("medvault/keyfile/v1 check"), 16))).toBe(c.check);
    const first = c.entries[0]!;
    const end = 69 + 12 + hexToBytes(first.secret).length + 16;
    const aad = concatBytes(utf8("medvault/keyfile/v1"), data.subarray(0, 63), new Uint8Array(2), data.subarray(63, 69));
    const aes = await crypto.subtle.importKey("raw", hexToBytes(c.aesKey).slice(), "AES-GCM", false, ["decrypt"]);
    const params = { name: "AES-GCM", iv: hexToBytes(first.nonce).slice(), additionalData: aad.slice() };
    expect(bytesToHex(new Uint8Array(await crypto.subtle.decrypt(params, aes, data.slice(81, end))))).toBe(first.secret);
  });

  it.each(doc.mustFail)("refuses: $why", async ({ why, passphrase: given, file }) => {
    const opening = openKeyFile(hexToBytes(file), given, why);
    if (why.includes("passphrase")) {
      await expect(opening).rejects.toThrow(WrongPassphraseError);
      await expect(openKeyFile(hexToBytes(file), given, why)).rejects.toThrow(/wrong passphrase/);
    } else {
      await expect(opening).rejects.toThrow(IntegrityError);
    }
  });
});

describe("backups", () => {
  it("imports the vector's backup: account key first, address checked", async () => {
    const { address, accountKey, entries } = await importBackup(hexToBytes(backup.file), passphrase);
    expect(address).toBe(backup.address);
    expect(bytesToHex(accountKey)).toBe(TEST_KEY);
    expect(hexEntries(entries)).toEqual(hexEntries(entriesOf(keyFile)));
  });

  it("refuses a key file as a backup, and a backup of another account's key", async () => {
    await expect(importBackup(hexToBytes(keyFile.file), passphrase)).rejects.toThrow(/not a backup/);
    await expect(importBackup(hexToBytes(passkeyFile.file), passphrase)).rejects.toThrow(KeystoreError);
    const sealer = await Sealer.fromPassphrase(passphrase, { log2N: 10 });
    const other = [{ ...entriesOf(backup)[0]!, secret: keccak256(utf8("medvault test vector/reader"), "bytes") }];
    const forged = await sealer.seal(hexToBytes(backup.address), other);
    await expect(importBackup(forged, passphrase)).rejects.toThrow(/holds the key of/);
  });

  it("exports what it imports, under a fresh salt, with the account key first", async () => {
    const entries = entriesOf(keyFile);
    const data = await exportBackup(hexToBytes(TEST_KEY), entries, "another passphrase", { log2N: 10 });
    const header = readHeader(data, "the export");
    expect(bytesToHex(header.salt)).not.toBe(bytesToHex(readHeader(hexToBytes(backup.file), "").salt));
    expect(data[63]).toBe(ACCOUNT_KEY);
    const restored = await importBackup(data, "another passphrase");
    expect(restored.address).toBe(backup.address);
    expect(hexEntries(restored.entries)).toEqual(hexEntries(entries));
    await expect(importBackup(data, passphrase)).rejects.toThrow(WrongPassphraseError);
  });

  // Two scrypt runs of N = 2^18 in JS: seconds each, hence the longer timeout.
  it("exports with medvault's work factor, N = 2^18, by default", { timeout: 60_000 }, async () => {
    const data = await exportBackup(hexToBytes(TEST_KEY), [], passphrase);
    expect([data[6], data[7], data[8]]).toEqual([18, 8, 1]);
    expect((await importBackup(data, passphrase)).entries).toEqual([]);
  });

  it("merges a backup into held keys as `keys import` does", () => {
    const held = entriesOf(passkeyFile); // X25519 and MLKEM768_X25519 of epoch 0, also in the backup
    const other: KeyEntry = { kind: 1, epoch: 1, flags: 0, secret: crypto.getRandomValues(new Uint8Array(32)) };
    const { entries, added } = mergeKeys([...held, other], entriesOf(keyFile));
    expect(added).toBe(2);
    // The backup's X25519 epoch 1 meets another epoch-1 key here: it moves to epoch 2.
    expect(entries.map((e) => [e.kind, e.epoch, e.flags])).toEqual([[1, 0, 0], [1, 1, 0], [1, 2, 0], [1, 2, 1], [2, 0, 0]]);
    expect(entries.find((e) => e.epoch === 2 && !e.flags)!.secret).toEqual(entriesOf(keyFile)[2]!.secret);
    expect(mergeKeys(entries, entriesOf(keyFile)).added).toBe(0);
  });
});

describe("creating and rotating", () => {
  it("creates epoch 0 of every suite, adds an epoch, and reseals with fresh nonces", async () => {
    const address = hexToBytes(keyFile.address);
    const sealer = await Sealer.fromPassphrase("a passphrase", { log2N: 10 });
    const created = addEpoch([], 0);
    expect(created.map((e) => [e.kind, e.epoch, e.secret.length])).toEqual([[1, 0, 32], [2, 0, 96]]);
    const first = await sealer.seal(address, created);
    expect((await openKeyFile(first, "a passphrase", "the file")).entries).toEqual(created);

    const epoch = nextEpoch(created, "X25519");
    expect(epoch).toBe(1);
    const rotated = addEpoch(created, epoch);
    expect(rotated.map((e) => [e.kind, e.epoch])).toEqual([[1, 0], [1, 1], [2, 0], [2, 1]]);
    expect(addEpoch(rotated, epoch)).toEqual(rotated);
    const second = await sealer.seal(address, rotated);
    expect(second.subarray(0, 61)).toEqual(first.subarray(0, 61)); // same salt and check value
    expect(second.subarray(63 + 6, 63 + 18)).not.toEqual(first.subarray(63 + 6, 63 + 18));
    expect((await openKeyFile(second, "a passphrase", "the file")).entries).toEqual(rotated);
    await expect(openKeyFile(second, "not it", "the file")).rejects.toThrow(WrongPassphraseError);
  });

  it("holds pairs newest first, legacy last; a legacy epoch still gets a random pair", async () => {
    const entries = entriesOf(keyFile);
    expect(heldPairs(entries, "X25519").map((h) => [h.epoch, h.legacy])).toEqual([[1, false], [0, false], [2, true]]);
    expect(heldPairs(entries, "X25519")[0]!.pair.publicKey).toEqual(hexToBytes(keyFile.entries[2]!.publicKey!));
    expect(nextEpoch(entries, "X25519")).toBe(3);
    expect(nextEpoch(entries, "MLKEM768_X25519")).toBe(1);
    const added = addEpoch(entries, 2);
    expect(added.filter((e) => e.epoch === 2).map((e) => [e.kind, e.flags & FLAG_LEGACY])).toEqual([[1, 0], [1, 1], [2, 0]]);
  });

  it("opens a passkey file only with its secret", async () => {
    const data = hexToBytes(passkeyFile.file);
    await expect(openKeyFile(data, passphrase, "the file")).rejects.toThrow(/32-byte secret/);
    await expect(openKeyFile(data, new Uint8Array(32), "the file")).rejects.toThrow(WrongPassphraseError);
    await expect(openKeyFile(hexToBytes(keyFile.file), new Uint8Array(32), "the file")).rejects.toThrow(/passphrase/);
  });

  it("refuses weak or absurd work factors, unknown KDFs, other files and trailing bytes", async () => {
    const data = hexToBytes(keyFile.file);
    const withByte = (at: number, value: number) => Uint8Array.from(data, (b, i) => (i === at ? value : b));
    expect(() => readHeader(withByte(6, 9), "")).toThrow(KeystoreError);
    expect(() => readHeader(withByte(6, 25), "")).toThrow(KeystoreError);
    expect(() => readHeader(withByte(7, 0), "")).toThrow(KeystoreError);
    expect(() => readHeader(withByte(5, 3), "")).toThrow(IntegrityError);
    expect(() => readHeader(withByte(0, 0x4e), "")).toThrow(IntegrityError);
    expect(() => readHeader(data.subarray(0, 62), "")).toThrow(IntegrityError);
    await expect(openKeyFile(concatBytes(data, new Uint8Array(1)), passphrase, "")).rejects.toThrow(/after the last entry/);
    await expect(openKeyFile(withByte(63, 7), passphrase, "")).rejects.toThrow(/entry 0 is malformed/);
    await expect(Sealer.fromPassphrase("", { log2N: 10 })).rejects.toThrow(KeystoreError);
    await expect(Sealer.fromSecret(new Uint8Array(31))).rejects.toThrow(KeystoreError);
  });

  it("refuses to seal entries that do not fit the format", async () => {
    const sealer = await Sealer.fromSecret(new Uint8Array(32));
    const address = hexToBytes(keyFile.address);
    const entry: KeyEntry = { kind: 1, epoch: 0, flags: 0, secret: new Uint8Array(32) };
    await expect(sealer.seal(address.subarray(1), [entry])).rejects.toThrow(KeystoreError);
    for (const bad of [{ kind: 2 }, { kind: 3 }, { epoch: -1 }, { epoch: 2 ** 32 }, { flags: 256 }]) {
      await expect(sealer.seal(address, [{ ...entry, ...bad }])).rejects.toThrow(KeystoreError);
    }
  });
});
