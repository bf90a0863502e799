import { readFileSync } from "node:fs";
import { type Address, bytesToHex, type Hex, hexToBytes } from "viem";
import { describe, expect, it } from "vitest";
import { KeystoreError, WrongPassphraseError } from "../src/formats/bytes";
import { decryptKeystore, encryptKeystore, type KeystoreV3 } from "../src/formats/keystore";

const doc = JSON.parse(readFileSync(new URL("../../docs/vectors/keystore.json", import.meta.url), "utf8")) as {
  privateKey: Hex;
  address: Address;
  passphrase: string;
  keystore: KeystoreV3;
};
const { passphrase, keystore } = doc;

// The same key as eth-account 0.13.7 writes it with PBKDF2, and with an IV whose first byte is
// zero (eth-account writes the IV as an integer: 15 bytes here). Not in keystore.json.
const PBKDF2 = {
  address: "09F86D58AC0A165E3453594e5A781410b4857479",
  crypto: {
    cipher: "aes-128-ctr",
    cipherparams: { iv: "221324eb005845357b7f72afa019bf13" },
    ciphertext: "dd4e5b29db3e52e80ddb7d6b818dd51eaa7278a76f60a2f9b618dd2719283a10",
    kdf: "pbkdf2",
    kdfparams: { c: 1000, dklen: 32, prf: "hmac-sha256", salt: "1478aafd922485172d307780ed60420a" },
    mac: "94592de796bdc11e4c7401475b96e78ab5b8756ebcd247310ea9b423e5ad831a",
  },
  id: "638b2d80-24cc-4d4c-9f64-228ca55815a3",
  version: 3,
};
const SHORT_IV = {
  address: "09F86D58AC0A165E3453594e5A781410b4857479",
  crypto: {
    cipher: "aes-128-ctr",
    cipherparams: { iv: "c681c8de58814b6069582cdc7d9d7b" },
    ciphertext: "c71f1ce96a9c741837c7c18d7b54a62275fe65c2657da619812c1c299a11d590",
    kdf: "scrypt",
    kdfparams: { dklen: 32, n: 1024, r: 8, p: 1, salt: "796eb300f80af95ae8b637027b54663e" },
    mac: "e45cefa8f4e4fe66fd9c0c25b53587ea3c1fbc35fab2d5ff322ec278a7c3c152",
  },
  id: "26b0b312-0bd9-463f-9bf4-4223ebd821e6",
  version: 3,
};

const altered = (change: (k: Record<string, any>) => void): Record<string, any> => {
  const copy = structuredClone(keystore) as Record<string, any>;
  change(copy);
  return copy;
};

describe("keystore.json", () => {
  it("decrypts to the test key and its address", async () => {
    const { privateKey, address } = await decryptKeystore(keystore, passphrase);
    expect(bytesToHex(privateKey)).toBe(doc.privateKey);
    expect(address).toBe(doc.address);
    expect(await decryptKeystore(JSON.stringify(keystore), passphrase)).toEqual({ privateKey, address });
  });

  it("is written byte for byte again from its salt, IV and id", async () => {
    const { crypto: c, id } = keystore;
    const written = await encryptKeystore(hexToBytes(doc.privateKey), passphrase, {
      n: c.kdfparams.n,
      salt: hexToBytes(`0x${c.kdfparams.salt}`),
      iv: hexToBytes(`0x${c.cipherparams.iv}`),
      id,
    });
    expect(JSON.stringify(written)).toBe(JSON.stringify(keystore));
  });

  it("refuses a wrong passphrase or an altered ciphertext or MAC by the MAC", async () => {
    await expect(decryptKeystore(keystore, "not the passphrase")).rejects.toThrow(WrongPassphraseError);
    const flip = (h: string) => (h[0] === "0" ? "1" : "0") + h.slice(1);
    for (const k of [
      altered((k) => (k.crypto.ciphertext = flip(k.crypto.ciphertext))),
      altered((k) => (k.crypto.mac = flip(k.crypto.mac))),
      altered((k) => (k.crypto.kdfparams.salt = flip(k.crypto.kdfparams.salt))),
    ]) {
      await expect(decryptKeystore(k, passphrase)).rejects.toThrow(WrongPassphraseError);
    }
  });

  it("reads keys in any case, as eth-account does", async () => {
    const upper = altered((k) => {
      k.Crypto = k.crypto;
      delete k.crypto;
    });
    expect(bytesToHex((await decryptKeystore(upper, passphrase)).privateKey)).toBe(doc.privateKey);
  });

  it.each([
    ["not JSON", "{"],
    ["version 4", altered((k) => (k.version = 4))],
    ["version as a string", altered((k) => (k.version = "3"))],
    ["no crypto", altered((k) => delete k.crypto)],
    ["another cipher", altered((k) => (k.crypto.cipher = "aes-128-cbc"))],
    ["another KDF", altered((k) => (k.crypto.kdf = "argon2"))],
    ["a short derived key", altered((k) => (k.crypto.kdfparams.dklen = 16))],
    ["n not a power of two", altered((k) => (k.crypto.kdfparams.n = 1000))],
    ["salt not hex", altered((k) => (k.crypto.kdfparams.salt = "xyz0"))],
    ["an IV over 16 bytes", altered((k) => (k.crypto.cipherparams.iv = `00${k.crypto.cipherparams.iv}`))],
    ["another account's address", altered((k) => (k.address = "52dc308296bb453270f1c995899f9af1ad413055"))],
  ])("refuses %s", async (_, k) => {
    await expect(decryptKeystore(k, passphrase)).rejects.toThrow(KeystoreError);
    await expect(decryptKeystore(k, passphrase)).rejects.not.toThrow(WrongPassphraseError);
  });
});

describe("keystores of eth-account beyond the vector", () => {
  it.each([
    ["PBKDF2", PBKDF2],
    ["an IV with a leading zero byte", SHORT_IV],
  ])("reads %s", async (_, k) => {
    const { privateKey, address } = await decryptKeystore(k, passphrase);
    expect(bytesToHex(privateKey)).toBe(doc.privateKey);
    expect(address).toBe(doc.address);
  });
});

describe("writing", () => {
  it("writes fresh salt, IV and id, which it reads back", async () => {
    const key = hexToBytes(doc.privateKey);
    const [a, b] = [await encryptKeystore(key, "pass", { n: 1024 }), await encryptKeystore(key, "pass", { n: 1024 })];
    expect(a.crypto.kdfparams.salt).not.toBe(b.crypto.kdfparams.salt);
    expect(a.crypto.cipherparams.iv).toHaveLength(32);
    expect(a.id).not.toBe(b.id);
    expect(a.address).toBe(doc.address.slice(2));
    expect((await decryptKeystore(a, "pass")).privateKey).toEqual(key);
  });

  it("refuses an empty passphrase and a weak or odd work factor", async () => {
    const key = hexToBytes(doc.privateKey);
    await expect(encryptKeystore(key, "", { n: 1024 })).rejects.toThrow(KeystoreError);
    for (const n of [512, 2048, 2 ** 17, 3 * 2 ** 18]) {
      await expect(encryptKeystore(key, "pass", { n })).rejects.toThrow(KeystoreError);
    }
  });
});
