// The record ciphertext (docs/FORMATS.md, "Record ciphertext"; Python: medvault.crypto
// encrypt_record / decrypt_record): "MVR1" || nonce (12) || AES-256-GCM(key, nonce, plaintext, aad) || tag (16),
// the associated data binding it to its chain, registry, patient, author and the author's seq.

import { type Address, encodeAbiParameters, hexToBytes } from "viem";
import { concatBytes, DecryptionError, equalBytes, IntegrityError, utf8 } from "./bytes";

/** Where a record lives; bound into its ciphertext and (through `associatedData`) every wrap of its key. */
export interface RecordContext {
  chainId: bigint | number;
  registry: Address;
  patient: Address;
  author: Address;
  seq: bigint | number;
}

export const KEY_LENGTH = 32;
const MAGIC = utf8("MVR1");
const NONCE_LENGTH = 12;
const HEADER_LENGTH = MAGIC.length + NONCE_LENGTH;
const TAG_LENGTH = 16;

/** `abi.encode(string "medvault/record/v2", uint256 chainId, address registry, address patient,
 * address author, uint64 seq)`: 256 bytes. */
export function associatedData(context: RecordContext): Uint8Array {
  const types = ["string", "uint256", "address", "address", "address", "uint64"].map((type) => ({ type }));
  const { chainId, registry, patient, author, seq } = context;
  return hexToBytes(
    encodeAbiParameters(types, ["medvault/record/v2", BigInt(chainId), registry, patient, author, BigInt(seq)]),
  );
}

/** How messages name the record, as the Python side does. */
export const describeRecord = (context: RecordContext): string =>
  `record ${context.seq} by ${context.author} of ${context.patient}`;

/** A fresh random record key: one per record, never reused. */
export const newRecordKey = (): Uint8Array => crypto.getRandomValues(new Uint8Array(KEY_LENGTH));

/**
 * Seals `plaintext` (an envelope) under `key` for the record `context` names. `nonce` is for
 * test vectors only: a fixed nonce must never seal two plaintexts under one key.
 */
export async function sealRecord(
  plaintext: Uint8Array,
  key: Uint8Array,
  context: RecordContext,
  nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(NONCE_LENGTH)),
): Promise<Uint8Array> {
  if (nonce.length !== NONCE_LENGTH) {
    throw new RangeError(`a record nonce has ${NONCE_LENGTH} bytes, not ${nonce.length}`);
  }
  const aes = await importKey(key, "encrypt");
  const sealed = await crypto.subtle.encrypt(gcm(nonce, context), aes, webBytes(plaintext));
  return concatBytes(MAGIC, nonce, new Uint8Array(sealed));
}

/**
 * The plaintext of `blob`: IntegrityError if it is not a medvault ciphertext at all, DecryptionError
 * if its tag fails (altered, another key, or another place than `context`).
 */
export async function openRecord(blob: Uint8Array, key: Uint8Array, context: RecordContext): Promise<Uint8Array> {
  if (blob.length < HEADER_LENGTH + TAG_LENGTH || !equalBytes(blob.subarray(0, MAGIC.length), MAGIC)) {
    throw new IntegrityError(`${describeRecord(context)} is not a medvault ciphertext`);
  }
  const aes = await importKey(key, "decrypt");
  const params = gcm(blob.subarray(MAGIC.length, HEADER_LENGTH), context);
  try {
    return new Uint8Array(await crypto.subtle.decrypt(params, aes, webBytes(blob.subarray(HEADER_LENGTH))));
  } catch {
    throw new DecryptionError(
      `${describeRecord(context)} failed authentication: it was tampered with, or the key or context is wrong`,
    );
  }
}

function importKey(key: Uint8Array, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  if (key.length !== KEY_LENGTH) throw new RangeError(`a record key has ${KEY_LENGTH} bytes, not ${key.length}`);
  return crypto.subtle.importKey("raw", webBytes(key), "AES-GCM", false, [usage]);
}

const gcm = (nonce: Uint8Array, context: RecordContext): AesGcmParams => ({
  name: "AES-GCM",
  iv: webBytes(nonce),
  additionalData: webBytes(associatedData(context)),
  tagLength: TAG_LENGTH * 8,
});

// WebCrypto's types take views of an ArrayBuffer only; ours are (never shared memory), and a
// record may be large, so it is passed as it is rather than copied.
const webBytes = (bytes: Uint8Array) => bytes as Uint8Array<ArrayBuffer>;
