// The account key in an Ethereum keystore, Web3 Secret Storage v3 (docs/FORMATS.md, "Keystore"):
// what `<home>/keystores/<name>.json` holds, as eth-account writes and reads it.
//
// derivedKey = scrypt (or PBKDF2-HMAC-SHA256) of the passphrase; the account key is
// AES-128-CTR under derivedKey[0:16], and mac = keccak256(derivedKey[16:32] || ciphertext).

import { pbkdf2Async } from "@noble/hashes/pbkdf2.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Address, bytesToHex, hexToBytes, keccak256 } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { concatBytes, equalBytes, KeystoreError, utf8, WrongPassphraseError } from "./bytes";

/** A keystore as medvault (eth-account) writes it; JSON.stringify gives eth-account's key order. */
export interface KeystoreV3 {
  address: string;
  crypto: {
    cipher: "aes-128-ctr";
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: "scrypt";
    kdfparams: { dklen: 32; n: number; r: 8; p: 1; salt: string };
    mac: string;
  };
  id: string;
  version: 3;
}

/** Random unless given (test vectors only). */
export interface KeystoreOptions {
  n?: number;
  salt?: Uint8Array;
  iv?: Uint8Array;
  id?: string;
}

export const DEFAULT_SCRYPT_N = 2 ** 18;
const TEST_SCRYPT_N = 2 ** 10; // as in Python: the test suite's throwaway keystores only

/**
 * Seals a 32-byte account key under `passphrase`. `salt`, `iv` and `id` are random unless given
 * (test vectors); `n` is 2^18, or 2^10 for throwaway test keystores.
 */
export async function encryptKeystore(
  privateKey: Uint8Array,
  passphrase: string,
  { n = DEFAULT_SCRYPT_N, salt = random(16), iv = random(16), id = crypto.randomUUID() }: KeystoreOptions = {},
): Promise<KeystoreV3> {
  if (!passphrase) throw new KeystoreError("an empty passphrase would leave the key unprotected");
  if (n !== TEST_SCRYPT_N && (n < DEFAULT_SCRYPT_N || !Number.isInteger(Math.log2(n)))) {
    throw new KeystoreError(`scrypt work factor ${n} refused: a power of two of at least ${DEFAULT_SCRYPT_N}`);
  }
  const address = privateKeyToAddress(bytesToHex(privateKey));
  const derived = await scryptAsync(utf8(passphrase), salt, { N: n, r: 8, p: 1, dkLen: 32 });
  const ciphertext = await aes128Ctr(derived.subarray(0, 16), iv, privateKey);
  return {
    address: address.slice(2),
    crypto: {
      cipher: "aes-128-ctr",
      cipherparams: { iv: bare(iv) },
      ciphertext: bare(ciphertext),
      kdf: "scrypt",
      kdfparams: { dklen: 32, n, r: 8, p: 1, salt: bare(salt) },
      mac: bare(keccak256(concatBytes(derived.subarray(16, 32), ciphertext), "bytes")),
    },
    id,
    version: 3,
  };
}

/**
 * The account key of a v3 keystore (its JSON text or parsed value), scrypt or PBKDF2, as
 * eth-account reads it (keys in any case). WrongPassphraseError when the MAC does not match,
 * KeystoreError for anything that is not a v3 keystore of one account key.
 */
export async function decryptKeystore(
  keystore: unknown,
  passphrase: string,
): Promise<{ privateKey: Uint8Array; address: Address }> {
  const doc = lowerKeys(typeof keystore === "string" ? parseJson(keystore) : keystore);
  if (field(doc, "version") !== 3) throw new KeystoreError("not a version 3 keystore");
  const c = field(doc, "crypto");
  if (text(c, "cipher") !== "aes-128-ctr") throw new KeystoreError(`unsupported keystore cipher ${text(c, "cipher")}`);
  const derived = await deriveKey(text(c, "kdf"), field(c, "kdfparams"), passphrase);
  const ciphertext = hex(c, "ciphertext");
  if (!equalBytes(keccak256(concatBytes(derived.subarray(16, 32), ciphertext), "bytes"), hex(c, "mac"))) {
    throw new WrongPassphraseError("wrong passphrase: the keystore's MAC does not match");
  }
  // eth-account writes the IV as an integer, without its leading zero bytes.
  const iv = hex(field(c, "cipherparams"), "iv");
  if (iv.length > 16) throw new KeystoreError("the keystore's IV is longer than 16 bytes");
  const counter = concatBytes(new Uint8Array(16 - iv.length), iv);
  const privateKey = await aes128Ctr(derived.subarray(0, 16), counter, ciphertext);
  let address: Address;
  try {
    address = privateKeyToAddress(bytesToHex(privateKey));
  } catch {
    throw new KeystoreError("the keystore does not hold a secp256k1 account key");
  }
  const named = (doc as Record<string, unknown>)["address"];
  if (typeof named === "string" && named.replace(/^0x/, "").toLowerCase() !== address.slice(2).toLowerCase()) {
    throw new KeystoreError(`the keystore names 0x${named.replace(/^0x/, "")} but holds the key of ${address}`);
  }
  return { privateKey, address };
}

async function deriveKey(kdf: string, params: unknown, passphrase: string): Promise<Uint8Array> {
  const dkLen = integer(params, "dklen");
  if (dkLen < 32) throw new KeystoreError(`a keystore key of ${dkLen} bytes is too short (32 are needed)`);
  const salt = hex(params, "salt");
  if (kdf === "scrypt") {
    const [N, r, p] = [integer(params, "n"), integer(params, "r"), integer(params, "p")];
    try {
      return await scryptAsync(utf8(passphrase), salt, { N, r, p, dkLen });
    } catch (error) {
      throw new KeystoreError(`the keystore's scrypt parameters are refused: ${(error as Error).message}`);
    }
  }
  if (kdf === "pbkdf2") {
    if (text(params, "prf") !== "hmac-sha256") throw new KeystoreError(`unsupported PBKDF2 PRF ${text(params, "prf")}`);
    return await pbkdf2Async(sha256, utf8(passphrase), salt, { c: integer(params, "c"), dkLen });
  }
  throw new KeystoreError(`unsupported keystore key derivation ${kdf}`);
}

async function aes128Ctr(key: Uint8Array, counter: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const aes = await crypto.subtle.importKey("raw", key.slice(), "AES-CTR", false, ["encrypt"]);
  const params = { name: "AES-CTR", counter: counter.slice(), length: 128 }; // the whole IV counts, as in eth-keyfile
  return new Uint8Array(await crypto.subtle.encrypt(params, aes, data.slice()));
}

const random = (length: number) => crypto.getRandomValues(new Uint8Array(length));
const bare = (bytes: Uint8Array) => bytesToHex(bytes).slice(2);

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new KeystoreError("the keystore is not JSON");
  }
}

/** Object keys in lower case, at every depth (eth-keyfile's normalize_keys: "Crypto" is "crypto"). */
function lowerKeys(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.toLowerCase(), lowerKeys(v)]));
}

function field(value: unknown, key: string): unknown {
  if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) {
    throw new KeystoreError(`not a Web3 Secret Storage keystore: "${key}" is missing`);
  }
  return (value as Record<string, unknown>)[key];
}

function text(value: unknown, key: string): string {
  const v = field(value, key);
  if (typeof v !== "string") throw new KeystoreError(`not a Web3 Secret Storage keystore: "${key}" is not a string`);
  return v;
}

function integer(value: unknown, key: string): number {
  const v = field(value, key);
  if (!Number.isSafeInteger(v) || (v as number) < 1) {
    throw new KeystoreError(`not a Web3 Secret Storage keystore: "${key}" is not a positive integer`);
  }
  return v as number;
}

function hex(value: unknown, key: string): Uint8Array {
  const v = text(value, key).replace(/^0x/, "");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(v)) {
    throw new KeystoreError(`not a Web3 Secret Storage keystore: "${key}" is not hex`);
  }
  return hexToBytes(`0x${v}`);
}
