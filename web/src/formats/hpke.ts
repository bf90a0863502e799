// Published encryption keys and the HPKE seals of record keys and escrow shares
// (docs/FORMATS.md, "Public keys and HPKE suites" and "HPKE info strings"; Python: medvault.crypto).
//
// RFC 9180 base mode, single shot, HKDF-SHA256 and AES-256-GCM, from @hpke/core. The X25519 suite
// uses @hpke/dhkem-x25519 (pure JS: WebCrypto X25519 is not in every browser). X-Wing is plugged
// in as a KEM of its own, because medvault's X-Wing private key is the expanded pair (X25519
// scalar, ML-KEM-768 seed d || z), not X-Wing's 32-byte seed.

import {
  Aes256Gcm,
  CipherSuite,
  HkdfSha256,
  KemId,
  NotSupportedError,
  type KemInterface,
  type RecipientContextParams,
  type SenderContextParams,
} from "@hpke/core";
import { DhkemX25519HkdfSha256 } from "@hpke/dhkem-x25519";
import { x25519 } from "@noble/curves/ed25519.js";
import { sha3_256 } from "@noble/hashes/sha3.js";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { type Address, bytesToHex, encodeAbiParameters, hexToBytes } from "viem";
import { concatBytes, DecryptionError, IntegrityError } from "./bytes";

/** A published key nothing can be wrapped for: malformed, low-order, or of an unknown suite. */
export class UnusableKeyError extends IntegrityError {
  override name = "UnusableKeyError";
}

export type KeySuite = "X25519" | "MLKEM768_X25519";

const MLKEM_EK_LENGTH = 1184;
const MLKEM_CT_LENGTH = 1088;
const MLKEM_Q = 3329;

// -- X-Wing (draft-connolly-cfrg-xwing-kem-06, HPKE KEM 0x647a) over the expanded private key

const XWING_LABEL = new Uint8Array([0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c]); // "\.//^\"

/** Raw key bytes behind the CryptoKey interface @hpke/core hands back to its KEM. */
class RawKey implements CryptoKey {
  readonly algorithm = { name: "X-Wing" };
  readonly extractable = false;
  readonly usages: KeyUsage[] = [];
  constructor(
    readonly type: "public" | "private",
    readonly bytes: Uint8Array,
  ) {}
}

function rawKey(key: CryptoKey | CryptoKeyPair, type: "public" | "private"): Uint8Array {
  const one = "type" in key ? key : type === "public" ? key.publicKey : key.privateKey;
  if (!(one instanceof RawKey) || one.type !== type) throw new TypeError(`not an X-Wing ${type} key`);
  return one.bytes;
}

function bytesOf(data: ArrayBufferLike | ArrayBufferView, length: number): Uint8Array {
  const bytes = ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
  if (bytes.length !== length) throw new RangeError(`expected ${length} bytes, got ${bytes.length}`);
  return bytes.slice();
}

/** A copy in an ArrayBuffer of its own, as @hpke/core and WebCrypto take bytes. */
function buffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}

// SHA3-256(ss_M || ss_X || ct_X || pk_X || label): draft 06 puts the label last.
function xwingCombiner(ssM: Uint8Array, ssX: Uint8Array, ctX: Uint8Array, pkX: Uint8Array): ArrayBuffer {
  return buffer(sha3_256(concatBytes(ssM, ssX, ctX, pkX, XWING_LABEL)));
}

class XWingExpanded implements KemInterface {
  readonly id = KemId.XWing;
  readonly secretSize = 32;
  readonly encSize = MLKEM_CT_LENGTH + 32;
  readonly publicKeySize = MLKEM_EK_LENGTH + 32;
  readonly privateKeySize = 96;

  async deserializePublicKey(key: ArrayBufferLike | ArrayBufferView): Promise<CryptoKey> {
    return new RawKey("public", bytesOf(key, this.publicKeySize));
  }

  async deserializePrivateKey(key: ArrayBufferLike | ArrayBufferView): Promise<CryptoKey> {
    return new RawKey("private", bytesOf(key, this.privateKeySize));
  }

  /** Encapsulate, or EncapsulateDerand when `ekm` is a 64-byte eseed (test vectors only). */
  async encap(params: SenderContextParams): Promise<{ sharedSecret: ArrayBuffer; enc: ArrayBuffer }> {
    const { ekm } = params;
    if (ekm !== undefined && "privateKey" in ekm) throw new TypeError("X-Wing takes a 64-byte eseed, not a key pair");
    const eseed = ekm === undefined ? crypto.getRandomValues(new Uint8Array(64)) : bytesOf(ekm, 64);
    const pk = rawKey(params.recipientPublicKey, "public");
    const pkX = pk.subarray(MLKEM_EK_LENGTH);
    const { cipherText: ctM, sharedSecret: ssM } = ml_kem768.encapsulate(
      pk.subarray(0, MLKEM_EK_LENGTH),
      eseed.subarray(0, 32),
    );
    const ekX = eseed.subarray(32);
    const ctX = x25519.getPublicKey(ekX);
    const sharedSecret = xwingCombiner(ssM, x25519.getSharedSecret(ekX, pkX), ctX, pkX);
    return { sharedSecret, enc: buffer(concatBytes(ctM, ctX)) };
  }

  async decap(params: RecipientContextParams): Promise<ArrayBuffer> {
    const sk = rawKey(params.recipientKey, "private");
    const enc = bytesOf(params.enc, this.encSize);
    const skX = sk.subarray(0, 32);
    const ctX = enc.subarray(MLKEM_CT_LENGTH);
    const ssM = ml_kem768.decapsulate(enc.subarray(0, MLKEM_CT_LENGTH), ml_kem768.keygen(sk.subarray(32)).secretKey);
    return xwingCombiner(ssM, x25519.getSharedSecret(skX, ctX), ctX, x25519.getPublicKey(skX));
  }

  // hpke.ts makes, stores and reads X-Wing keys in medvault's own formats; HPKE never has to.
  async serializePublicKey(): Promise<ArrayBuffer> {
    throw new NotSupportedError("X-Wing keys are not exported through HPKE");
  }
  async serializePrivateKey(): Promise<ArrayBuffer> {
    throw new NotSupportedError("X-Wing keys are not exported through HPKE");
  }
  async importKey(): Promise<CryptoKey> {
    throw new NotSupportedError("X-Wing keys are read with deserializePublicKey and deserializePrivateKey");
  }
  async generateKeyPair(): Promise<CryptoKeyPair> {
    throw new NotSupportedError("X-Wing key pairs come from generateKeyPair of hpke.ts");
  }
  async deriveKeyPair(): Promise<CryptoKeyPair> {
    throw new NotSupportedError("medvault's X-Wing keys are not derived from an X-Wing seed");
  }
}

// -- the suites

// One KDF object per suite: CipherSuite binds its suite id into the KDF it is given.
const HPKE: Record<KeySuite, CipherSuite> = {
  X25519: new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }),
  MLKEM768_X25519: new CipherSuite({ kem: new XWingExpanded(), kdf: new HkdfSha256(), aead: new Aes256Gcm() }),
};

function ids(suite: KeySuite) {
  const { kem, kdf, aead } = HPKE[suite];
  return { kemId: kem.id, kdfId: kdf.id, aeadId: aead.id, encLength: kem.encSize };
}

/** The suites' table (ids as the HPKE objects above use them). `tag` is the first byte of a
 * published key; `publicKeyLength` counts it. */
export const SUITES = {
  X25519: { tag: 1, publicKeyLength: 1 + 32, privateKeyLength: 32, ...ids("X25519") },
  MLKEM768_X25519: {
    tag: 2,
    publicKeyLength: 1 + MLKEM_EK_LENGTH + 32,
    privateKeyLength: 96,
    ...ids("MLKEM768_X25519"),
  },
} as const;

export const KEY_SUITES = Object.keys(SUITES) as KeySuite[];

export function suiteOfTag(tag: number): KeySuite | undefined {
  return KEY_SUITES.find((suite) => SUITES[suite].tag === tag);
}

// -- key pairs and published keys

/** An HPKE key pair: `privateKey` is what a key file seals (X25519 scalar, then for
 * MLKEM768_X25519 the ML-KEM-768 seed d || z), `publicKey` what the registry publishes. */
export interface EncryptionKeyPair {
  readonly suite: KeySuite;
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function keyPairFromPrivate(privateKey: Uint8Array, suite: KeySuite): EncryptionKeyPair {
  const { tag, privateKeyLength } = SUITES[suite];
  if (privateKey.length !== privateKeyLength) {
    throw new RangeError(`a ${suite} private key has ${privateKeyLength} bytes, not ${privateKey.length}`);
  }
  const xPublic = x25519.getPublicKey(privateKey.subarray(0, 32));
  const mPublic = suite === "X25519" ? new Uint8Array() : ml_kem768.keygen(privateKey.subarray(32)).publicKey;
  return { suite, privateKey: privateKey.slice(), publicKey: concatBytes(new Uint8Array([tag]), mPublic, xPublic) };
}

/** A fresh random pair (crypto.getRandomValues): what every new account and rotation gets. */
export function generateKeyPair(suite: KeySuite): EncryptionKeyPair {
  return keyPairFromPrivate(crypto.getRandomValues(new Uint8Array(SUITES[suite].privateKeyLength)), suite);
}

// RFC 7748 section 6.1: the u-coordinates of the points of order 1, 2, 4 and 8. Every shared
// secret with one of them is zero, so a key wrapped "for" it would be readable by anyone.
const P = 2n ** 255n - 19n;
const LOW_ORDER_U = new Set([
  0n,
  1n,
  P - 1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
]);

/** Whether a 32-byte X25519 public key is any of the 14 encodings of a low-order point
 * (the top bit, which X25519 ignores, cleared; values from p up reduced mod p). */
export function isLowOrder(x25519Public: Uint8Array): boolean {
  const u = BigInt(bytesToHex(x25519Public.slice().reverse())) & ((1n << 255n) - 1n);
  return LOW_ORDER_U.has(u % P);
}

/** FIPS 203's modulus check: the 768 12-bit coefficients packed in the first 1152 bytes of an
 * ML-KEM-768 encapsulation key are all below q (the last 32 bytes are rho). */
function mlkemReduced(ek: Uint8Array): boolean {
  for (let i = 0; i < 1152; i += 3) {
    const [a, b, c] = [ek[i]!, ek[i + 1]!, ek[i + 2]!];
    if ((a | ((b & 0x0f) << 8)) >= MLKEM_Q || ((b >> 4) | (c << 4)) >= MLKEM_Q) return false;
  }
  return true;
}

/** The suite of a published key (`tag || raw key`), checked as a writer must before sealing
 * anything to it; UnusableKeyError, saying why, otherwise. */
export function parsePublicKey(published: Uint8Array): KeySuite {
  const tag = published[0];
  if (tag === undefined) throw new UnusableKeyError("the encryption public key is empty");
  const suite = suiteOfTag(tag);
  if (suite === undefined) throw new UnusableKeyError(`the encryption public key has an unknown suite tag ${tag}`);
  const expected = SUITES[suite].publicKeyLength - 1;
  if (published.length - 1 !== expected) {
    throw new UnusableKeyError(
      `the ${suite} encryption public key has ${published.length - 1} bytes after its suite tag, not ${expected}`,
    );
  }
  if (isLowOrder(published.subarray(-32))) {
    throw new UnusableKeyError(
      `the X25519 part of the ${suite} encryption public key is a low-order point of RFC 7748: ` +
        "every shared secret with it is zero, so a key wrapped for it would be no secret",
    );
  }
  if (suite === "MLKEM768_X25519" && !mlkemReduced(published.subarray(1, 1 + MLKEM_EK_LENGTH))) {
    throw new UnusableKeyError(
      `the ML-KEM-768 part of the ${suite} encryption public key is malformed ` +
        `(a coefficient is not below q = ${MLKEM_Q}, FIPS 203 section 7.2)`,
    );
  }
  return suite;
}

// -- info strings: abi.encode of the record's associated data (the 256-byte aad of
// "Record ciphertext") and of whom the seal is for

const abi = (types: string[], values: unknown[]): Uint8Array =>
  hexToBytes(encodeAbiParameters(types.map((type) => ({ type })), values));

/** `abi.encode(bytes aad, address reader)`: a reader's wrap of the record key. */
export function wrapInfo(aad: Uint8Array, reader: Address): Uint8Array {
  return abi(["bytes", "address"], [bytesToHex(aad), reader]);
}

/** `abi.encode(bytes aad, string "medvault/escrow/v1", address keeper)`: a keeper's escrowed share. */
export function escrowInfo(aad: Uint8Array, keeper: Address): Uint8Array {
  return abi(["bytes", "string", "address"], [bytesToHex(aad), "medvault/escrow/v1", keeper]);
}

/** `abi.encode(bytes aad, string "medvault/release/v1", address reader, address keeper, uint8 x)`:
 * share `x` as `keeper` releases it to `reader`. */
export function releaseInfo(aad: Uint8Array, reader: Address, keeper: Address, x: number): Uint8Array {
  const types = ["bytes", "string", "address", "address", "uint8"];
  return abi(types, [bytesToHex(aad), "medvault/release/v1", reader, keeper, x]);
}

// -- seal and open

/**
 * HPKE-seals `share` (a 32-byte record key or share) to the published key `recipient` under
 * `info`: `enc || ciphertext || tag`. UnusableKeyError if that key cannot be used.
 * `ephemeral` is for test vectors only: the X25519 ephemeral private key, or for
 * MLKEM768_X25519 X-Wing's 64-byte eseed (ML-KEM message m || X25519 ephemeral key).
 */
export async function sealShare(
  share: Uint8Array,
  recipient: Uint8Array,
  info: Uint8Array,
  ephemeral?: Uint8Array,
): Promise<Uint8Array> {
  const suite = parsePublicKey(recipient);
  const { kem } = HPKE[suite];
  const params: SenderContextParams = {
    recipientPublicKey: await kem.deserializePublicKey(buffer(recipient.subarray(1))),
    info: buffer(info),
  };
  if (ephemeral !== undefined && suite === "X25519") {
    const publicKey = await kem.deserializePublicKey(buffer(x25519.getPublicKey(ephemeral)));
    params.ekm = { privateKey: await kem.deserializePrivateKey(buffer(ephemeral)), publicKey };
  } else if (ephemeral !== undefined) {
    params.ekm = buffer(ephemeral);
  }
  const { enc, ct } = await HPKE[suite].seal(params, buffer(share));
  return concatBytes(new Uint8Array(enc), new Uint8Array(ct));
}

/** Opens a seal of a 32-byte key or share made to `pair` under `info`; DecryptionError naming
 * `what` when it was not (or it holds anything but 32 bytes). */
export async function openShare(
  sealed: Uint8Array,
  pair: EncryptionKeyPair,
  info: Uint8Array,
  what: string,
): Promise<Uint8Array> {
  const { kem } = HPKE[pair.suite];
  let plaintext: Uint8Array;
  try {
    const params: RecipientContextParams = {
      recipientKey: await kem.deserializePrivateKey(buffer(pair.privateKey)),
      enc: buffer(sealed.subarray(0, kem.encSize)),
      info: buffer(info),
    };
    plaintext = new Uint8Array(await HPKE[pair.suite].open(params, buffer(sealed.subarray(kem.encSize))));
  } catch {
    throw new DecryptionError(what);
  }
  if (plaintext.length !== 32) throw new DecryptionError(what);
  return plaintext;
}

/** Wraps a record key for `reader`, whose published key is `recipient`; `aad` is the record's. */
export function wrapKey(recordKey: Uint8Array, recipient: Uint8Array, aad: Uint8Array, reader: Address) {
  return sealShare(recordKey, recipient, wrapInfo(aad, reader));
}

export function unwrapKey(wrapped: Uint8Array, pair: EncryptionKeyPair, aad: Uint8Array, reader: Address) {
  return openShare(wrapped, pair, wrapInfo(aad, reader), `the key wrap for ${reader}`);
}
