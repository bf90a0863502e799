// The sealed key file: an account's random HPKE private keys under a passphrase or a passkey
// secret (docs/FORMATS.md, "Key file"; Python: medvault.formats.keyfile, accounts.KeyRing).
//
// One format, two files: `<name>.keys` beside the keystore, and the backup `medvault keys export`
// writes (the same, with the account's secp256k1 key as entry 0). Every entry is AES-256-GCM
// sealed on its own, its aad the whole header plus its position, kind, epoch and flags, so no
// entry can be moved, dropped, added or reordered unnoticed.

import { hkdf } from "@noble/hashes/hkdf.js";
import { scryptAsync } from "@noble/hashes/scrypt.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Address, bytesToHex, hexToBytes } from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { concatBytes, equalBytes, IntegrityError, KeystoreError, utf8, WrongPassphraseError } from "./bytes";
import { generateKeyPair, KEY_SUITES, keyPairFromPrivate, type KeySuite, SUITES, suiteOfTag } from "./hpke";

export const KDF_SCRYPT = 1; // sealing key = scrypt(passphrase UTF-8, salt, 2^log2N, r, p, 32)
export const KDF_SECRET = 2; // sealing key = HKDF-SHA256(32-byte secret, salt, "medvault/keyfile/v1 secret", 32)
export const ACCOUNT_KEY = 0; // entry kind of the account's secp256k1 key (backups only); HPKE kinds are suite tags
export const FLAG_LEGACY = 1; // a signature-derived key kept to open old wraps (legacy.ts)

const MAGIC = utf8("MVKF");
const VERSION = 1;
const LABEL = "medvault/keyfile/v1";
const HEADER_LENGTH = 63;
const ENTRY_OVERHEAD = 1 + 4 + 1 + 12 + 16; // kind, epoch, flags, nonce, tag
const SECRET_LENGTHS: Record<number, number> = {
  [ACCOUNT_KEY]: 32,
  [SUITES.X25519.tag]: SUITES.X25519.privateKeyLength,
  [SUITES.MLKEM768_X25519.tag]: SUITES.MLKEM768_X25519.privateKeyLength,
};

/** One secret of a key file: `kind` is ACCOUNT_KEY or a suite tag; `secret` a private key. */
export interface KeyEntry {
  readonly kind: number;
  readonly epoch: number;
  readonly flags: number;
  readonly secret: Uint8Array;
}

/** The clear part of a key file: whose keys, and how its sealing key is derived. */
export interface KeyFileHeader {
  readonly address: Uint8Array;
  readonly kdf: number;
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Uint8Array;
  readonly check: Uint8Array;
  readonly count: number;
}

/** A sealing key derived once (scrypt is slow) and the KDF parameters that produced it. */
export class Sealer {
  private constructor(
    readonly kdf: number,
    readonly salt: Uint8Array,
    readonly log2N: number,
    readonly r: number,
    readonly p: number,
    readonly check: Uint8Array,
    private readonly aes: CryptoKey,
  ) {}

  /** The AES key and check value are two HKDF outputs of the sealing key, so a wrong
   * passphrase is told apart from an altered file before anything is decrypted. */
  private static async make(
    kdf: number,
    salt: Uint8Array,
    log2N: number,
    r: number,
    p: number,
    sealingKey: Uint8Array,
  ): Promise<Sealer> {
    const aesKey = hkdf(sha256, sealingKey, undefined, utf8(`${LABEL} aes-256-gcm`), 32);
    const check = hkdf(sha256, sealingKey, undefined, utf8(`${LABEL} check`), 16);
    const aes = await crypto.subtle.importKey("raw", aesKey, "AES-GCM", false, ["encrypt", "decrypt"]);
    return new Sealer(kdf, salt, log2N, r, p, check, aes);
  }

  /** medvault writes N = 2^18, r = 8, p = 1; a fresh random salt unless one is given. */
  static async fromPassphrase(
    passphrase: string,
    { log2N = 18, r = 8, p = 1, salt = random(16) }: { log2N?: number; r?: number; p?: number; salt?: Uint8Array } = {},
  ): Promise<Sealer> {
    if (!passphrase) throw new KeystoreError("an empty passphrase would leave the keys unprotected");
    checkWork(log2N, r, p);
    let key: Uint8Array;
    try {
      key = await scryptAsync(utf8(passphrase), salt, { N: 2 ** log2N, r, p, dkLen: 32 });
    } catch (error) {
      // noble stops at 1 GiB (128 * r * N bytes); the format allows up to 2^24 with r = 32, 64 GiB.
      throw new KeystoreError(`scrypt N=2^${log2N}, r=${r}, p=${p} cannot run here: ${(error as Error).message}`);
    }
    return Sealer.make(KDF_SCRYPT, salt, log2N, r, p, key);
  }

  /** From a 32-byte secret held elsewhere: a passkey's WebAuthn PRF output. */
  static async fromSecret(secret: Uint8Array, { salt = random(16) }: { salt?: Uint8Array } = {}): Promise<Sealer> {
    if (secret.length !== 32) throw new KeystoreError(`a sealing secret has 32 bytes, not ${secret.length}`);
    return Sealer.make(KDF_SECRET, salt, 0, 0, 0, hkdf(sha256, secret, salt, utf8(`${LABEL} secret`), 32));
  }

  /** The sealer of an existing file, from its passphrase (or 32-byte secret). */
  static async forHeader(header: KeyFileHeader, secret: string | Uint8Array): Promise<Sealer> {
    const { kdf, log2N, r, p, salt } = header;
    if (kdf === KDF_SCRYPT) {
      if (typeof secret !== "string") throw new KeystoreError("this key file is sealed under a passphrase");
      return Sealer.fromPassphrase(secret, { log2N, r, p, salt });
    }
    if (typeof secret === "string") {
      throw new KeystoreError("this key file is sealed under a 32-byte secret (a passkey), not a passphrase");
    }
    return Sealer.fromSecret(secret, { salt });
  }

  /** The key file holding `entries` for the 20-byte `address`; fresh random nonces unless
   * `nonces` are given (test vectors only). */
  async seal(address: Uint8Array, entries: readonly KeyEntry[], nonces?: readonly Uint8Array[]): Promise<Uint8Array> {
    if (address.length !== 20) throw new KeystoreError("an account address has 20 bytes");
    if (entries.length >= 2 ** 16) throw new KeystoreError("a key file holds at most 65535 entries");
    const head = concatBytes(
      MAGIC,
      new Uint8Array([VERSION, this.kdf, this.log2N, this.r, this.p]),
      this.salt,
      address,
      this.check,
      uint(entries.length, 2),
    );
    const out = [head];
    for (const [i, entry] of entries.entries()) {
      checkEntry(entry);
      const nonce = nonces?.[i] ?? random(12);
      const meta = concatBytes(new Uint8Array([entry.kind]), uint(entry.epoch, 4), new Uint8Array([entry.flags]));
      const params = { name: "AES-GCM", iv: nonce.slice(), additionalData: aad(head, i, meta) };
      out.push(meta, nonce, new Uint8Array(await crypto.subtle.encrypt(params, this.aes, entry.secret.slice())));
    }
    return concatBytes(...out);
  }

  /** The entries of `data` (whose header is `header`); WrongPassphraseError when the check value
   * differs, IntegrityError naming `what` when the file was altered or damaged. */
  async open(data: Uint8Array, header: KeyFileHeader, what: string): Promise<KeyEntry[]> {
    if (!equalBytes(header.check, this.check)) {
      throw new WrongPassphraseError(`wrong passphrase for ${what}: its keys were not decrypted`);
    }
    const damaged = (why: string) => new IntegrityError(`${what} is damaged or was altered (${why})`);
    const head = data.subarray(0, HEADER_LENGTH);
    const entries: KeyEntry[] = [];
    let at = HEADER_LENGTH;
    for (let i = 0; i < header.count; i++) {
      const length = SECRET_LENGTHS[data[at] ?? -1];
      if (at + 6 > data.length || length === undefined) throw damaged(`entry ${i} is malformed`);
      const meta = data.subarray(at, at + 6);
      const end = at + ENTRY_OVERHEAD + length;
      if (end > data.length) throw damaged(`entry ${i} is cut short`);
      const params = { name: "AES-GCM", iv: data.slice(at + 6, at + 18), additionalData: aad(head, i, meta) };
      let secret: Uint8Array;
      try {
        secret = new Uint8Array(await crypto.subtle.decrypt(params, this.aes, data.slice(at + 18, end)));
      } catch {
        throw damaged(`entry ${i} fails authentication`);
      }
      entries.push({ kind: meta[0]!, epoch: readUint(meta.subarray(1, 5)), flags: meta[5]!, secret });
      at = end;
    }
    if (at !== data.length) throw damaged(`${data.length - at} bytes after the last entry`);
    return entries;
  }
}

/** The header of a key file, checked for format and version (nothing is decrypted). */
export function readHeader(data: Uint8Array, what: string): KeyFileHeader {
  if (data.length < HEADER_LENGTH || !equalBytes(data.subarray(0, 4), MAGIC)) {
    throw new IntegrityError(`${what} is not a medvault key file`);
  }
  if (data[4] !== VERSION) {
    throw new IntegrityError(`${what} is a key file of version ${data[4]}; this medvault reads version ${VERSION}`);
  }
  const [kdf, log2N, r, p] = [data[5]!, data[6]!, data[7]!, data[8]!];
  if (kdf === KDF_SCRYPT) checkWork(log2N, r, p);
  else if (kdf !== KDF_SECRET) throw new IntegrityError(`${what} names an unknown key derivation (${kdf})`);
  return {
    address: data.slice(25, 45),
    kdf,
    log2N,
    r,
    p,
    salt: data.slice(9, 25),
    check: data.slice(45, 61),
    count: readUint(data.subarray(61, 63)),
  };
}

/** Decrypts a key file with its passphrase (or 32-byte secret): its header, the sealer to write
 * it again (same salt, fresh nonces) and its entries. */
export async function openKeyFile(data: Uint8Array, secret: string | Uint8Array, what: string) {
  const header = readHeader(data, what);
  const sealer = await Sealer.forHeader(header, secret);
  return { header, sealer, entries: await sealer.open(data, header, what) };
}

// -- the keys a file holds

/** The HPKE pairs of `entries` of `suite` (a key file's account entry is ignored), in the order
 * readers try them: newest epoch first, legacy ones last. */
export function heldPairs(entries: readonly KeyEntry[], suite: KeySuite) {
  return entries
    .filter((e) => e.kind === SUITES[suite].tag)
    .map((e) => ({ epoch: e.epoch, legacy: (e.flags & FLAG_LEGACY) !== 0, pair: keyPairFromPrivate(e.secret, suite) }))
    .sort((a, b) => Number(a.legacy) - Number(b.legacy) || b.epoch - a.epoch);
}

/** The epoch a rotation of `suite` moves to: one past the newest held (legacy ones included). */
export function nextEpoch(entries: readonly KeyEntry[], suite: KeySuite): number {
  return 1 + Math.max(-1, ...entries.filter((e) => e.kind === SUITES[suite].tag).map((e) => e.epoch));
}

/** `entries` with fresh random pairs of `epoch` for every suite that lacks one (a new account:
 * epoch 0; a rotation: nextEpoch). Seal the result before publishing any new key. */
export function addEpoch(entries: readonly KeyEntry[], epoch: number): KeyEntry[] {
  const lacking = KEY_SUITES.filter(
    (s) => !entries.some((e) => e.kind === SUITES[s].tag && e.epoch === epoch && !(e.flags & FLAG_LEGACY)),
  );
  const added = lacking.map((s) => ({ kind: SUITES[s].tag, epoch, flags: 0, secret: generateKeyPair(s).privateKey }));
  return ringOrder([...entries, ...added]);
}

/** The order medvault's key ring writes HPKE entries in (KeyRing.entries): by suite, random
 * before legacy, then epoch. Readers take any order. */
function ringOrder(entries: readonly KeyEntry[]): KeyEntry[] {
  const legacy = (e: KeyEntry) => e.flags & FLAG_LEGACY;
  return hpkeEntries(entries).sort((a, b) => a.kind - b.kind || legacy(a) - legacy(b) || a.epoch - b.epoch);
}

/** The entries but the account key's: only a backup holds one, first, and a key file's reader ignores it. */
const hpkeEntries = (entries: readonly KeyEntry[]) => entries.filter((e) => e.kind !== ACCOUNT_KEY);

// -- backups (`medvault keys export` / `keys import`)

/** A backup of the account key and every HPKE entry, sealed under `passphrase` with a fresh salt
 * (N = 2^log2N, 18 unless given: 10 only for tests), as `keys export` writes it. */
export async function exportBackup(
  accountKey: Uint8Array,
  entries: readonly KeyEntry[],
  passphrase: string,
  { log2N = 18 }: { log2N?: number } = {},
): Promise<Uint8Array> {
  const address = hexToBytes(privateKeyToAddress(bytesToHex(accountKey)));
  const sealer = await Sealer.fromPassphrase(passphrase, { log2N });
  return sealer.seal(address, [{ kind: ACCOUNT_KEY, epoch: 0, flags: 0, secret: accountKey }, ...hpkeEntries(entries)]);
}

/** The account key, its address and HPKE entries of a backup. WrongPassphraseError for a wrong
 * passphrase; IntegrityError for an altered file, a key file that is no backup, or a backup
 * whose account key is not the header's account. */
export async function importBackup(data: Uint8Array, passphrase: string, what = "the backup") {
  const { header, entries } = await openKeyFile(data, passphrase, what);
  const accounts = entries.filter((e) => e.kind === ACCOUNT_KEY);
  if (accounts.length !== 1) throw new IntegrityError(`${what} is a key file, not a backup: it holds no account key`);
  const accountKey = accounts[0]!.secret;
  const address: Address = privateKeyToAddress(bytesToHex(accountKey));
  if (!equalBytes(hexToBytes(address), header.address)) {
    throw new IntegrityError(`${what} names ${bytesToHex(header.address)} but holds the key of ${address}`);
  }
  return { address, accountKey, entries: hpkeEntries(entries) };
}

/** `held` with the pairs of `restored` it lacks (compared by public key), as `keys import` adds a
 * backup to an existing account: a restored pair whose epoch this device used for another key
 * moves to the suite's next epoch. */
export function mergeKeys(held: readonly KeyEntry[], restored: readonly KeyEntry[]) {
  const merged = ringOrder(held);
  const publicKey = (e: KeyEntry) => bytesToHex(keyPairFromPrivate(e.secret, suiteOfTag(e.kind)!).publicKey);
  const legacy = (e: KeyEntry) => e.flags & FLAG_LEGACY;
  const known = new Set(merged.map(publicKey));
  let added = 0;
  for (const entry of ringOrder(restored).sort((a, b) => a.epoch - b.epoch)) {
    if (known.has(publicKey(entry))) continue;
    const taken = merged.some((e) => e.kind === entry.kind && e.epoch === entry.epoch && legacy(e) === legacy(entry));
    merged.push(taken ? { ...entry, epoch: nextEpoch(merged, suiteOfTag(entry.kind)!) } : entry);
    added++;
  }
  return { entries: ringOrder(merged), added };
}

// -- bytes

function checkWork(log2N: number, r: number, p: number): void {
  if (log2N < 10 || log2N > 24 || r < 1 || r > 32 || p < 1 || p > 16) {
    throw new KeystoreError(
      `scrypt parameters N=2^${log2N}, r=${r}, p=${p} are refused (N from 2^10 to 2^24, r 1..32, p 1..16)`,
    );
  }
}

function checkEntry({ kind, epoch, flags, secret }: KeyEntry): void {
  if (SECRET_LENGTHS[kind] !== secret.length) {
    throw new KeystoreError(`a key-file entry of kind ${kind} cannot hold ${secret.length} bytes`);
  }
  if (!Number.isInteger(flags) || flags < 0 || flags > 255) {
    throw new KeystoreError(`key flags ${flags} are not a byte`);
  }
  if (!Number.isInteger(epoch) || epoch < 0 || epoch >= 2 ** 32) {
    throw new KeystoreError(`key epoch ${epoch} is out of range`);
  }
}

function aad(head: Uint8Array, index: number, meta: Uint8Array): Uint8Array<ArrayBuffer> {
  return concatBytes(utf8(LABEL), head, uint(index, 2), meta).slice();
}

function uint(value: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

const readUint = (bytes: Uint8Array): number => bytes.reduce((n, b) => n * 256 + b, 0);
const random = (length: number) => crypto.getRandomValues(new Uint8Array(length));
