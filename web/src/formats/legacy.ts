// LEGACY, migration only (docs/FORMATS.md, "Legacy encryption-key derivation"; Python:
// crypto.legacy_encryption_key_typed_data, EncryptionKeyPair.legacy_from_signature).
//
// Accounts registered before key files existed published a key derived from a wallet signature
// over a fixed document, which any web page can ask a wallet to sign (security review, H-2).
// New keys are random (hpke.ts generateKeyPair). This derivation exists so that migration can
// open what was wrapped for an old key: ask the wallet for legacyTypedData only to migrate.

import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes, keccak256 } from "viem";
import { concatBytes, utf8 } from "./bytes";
import { type EncryptionKeyPair, keyPairFromPrivate, type KeySuite, SUITES } from "./hpke";

const PURPOSE = "Derive my medvault encryption key. Signing this does not authorize any transaction.";
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The eth_signTypedData_v4 document whose signature gave the `suite` key of `epoch`. */
export function legacyTypedData(suite: KeySuite, epoch: number) {
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new RangeError(`a key epoch is a non-negative integer, not ${epoch}`);
  }
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
      ],
      EncryptionKey: [
        { name: "purpose", type: "string" },
        { name: "suite", type: "string" },
        { name: "epoch", type: "uint256" },
      ],
    },
    primaryType: "EncryptionKey",
    domain: { name: "medvault encryption key", version: "1" },
    message: { purpose: PURPOSE, suite, epoch },
  } as const;
}

/** A 65-byte signature r || s || v spelled one way, as wallets differ: v in 27/28 (not the
 * y-parity 0/1) and s low (EIP-2), v flipped with s. RangeError for another length or v.
 * Not legacy only: consent and keeper signatures are sent this way too (FORMATS.md, note 3). */
export function normalisedSignature(signature: Uint8Array): Uint8Array {
  if (signature.length !== 65) throw new RangeError(`an Ethereum signature has 65 bytes, this one ${signature.length}`);
  let v = signature[64]!;
  if (v === 0 || v === 1) v += 27;
  if (v !== 27 && v !== 28) throw new RangeError(`signature recovery id v=${signature[64]} is neither 27/28 nor 0/1`);
  let s = BigInt(bytesToHex(signature.subarray(32, 64)));
  if (s > SECP256K1_N / 2n) [s, v] = [SECP256K1_N - s, 55 - v];
  const sBytes = hexToBytes(`0x${s.toString(16).padStart(64, "0")}`);
  return concatBytes(signature.subarray(0, 32), sBytes, new Uint8Array([v]));
}

/** The pair HKDF-SHA256 expands from a 32-byte `secret` (salt "medvault", 96 bytes of seed). */
export function deriveLegacyKeyPair(secret: Uint8Array, suite: KeySuite, epoch: number): EncryptionKeyPair {
  const seed = hkdf(sha256, secret, utf8("medvault"), utf8(`medvault/encryption-key/${suite}/epoch-${epoch}`), 96);
  return keyPairFromPrivate(seed.subarray(0, SUITES[suite].privateKeyLength), suite);
}

/** The legacy pair of a signature over legacyTypedData(suite, epoch): secret = keccak256 of the
 * normalised signature. */
export function legacyKeyPair(signature: Uint8Array, suite: KeySuite, epoch: number): EncryptionKeyPair {
  return deriveLegacyKeyPair(keccak256(normalisedSignature(signature), "bytes"), suite, epoch);
}
