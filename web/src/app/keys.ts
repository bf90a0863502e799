// The account's encryption keys in the browser: random HPKE pairs in medvault's key-file format,
// sealed under a passphrase (scrypt) and kept sealed in IndexedDB. Unsealed keys live only in this
// page's memory, for as long as it is open; the wallet's account key is never asked for.
import { type Address, bytesToHex, getAddress, hexToBytes, keccak256 } from "viem";
import { IntegrityError, KeystoreError } from "../formats/bytes";
import type { EncryptionKeyPair } from "../formats/hpke";
import {
  addEpoch,
  heldPairs,
  importBackup,
  type KeyEntry,
  mergeKeys,
  nextEpoch,
  openKeyFile,
  readHeader,
  Sealer,
} from "../formats/keyfile";
import { type Session, UserFacingError } from "./session";

const DB = "medvault";
const STORE = "keyfiles"; // sealed key files by lower-case address: ciphertext only

function database(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE);
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function stored(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest): Promise<unknown> {
  const db = await database();
  return new Promise((resolve, reject) => {
    const request = act(db.transaction(STORE, mode).objectStore(STORE));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export const storedKeyFile = async (account: Address) =>
  (await stored("readonly", (s) => s.get(account.toLowerCase()))) as Uint8Array | undefined;
const storeKeyFile = (account: Address, file: Uint8Array) => stored("readwrite", (s) => s.put(file, account.toLowerCase()));

/** An unsealed key file: the account's HPKE entries and the sealer that writes it again. */
export class Keys {
  constructor(
    readonly account: Address,
    readonly entries: readonly KeyEntry[],
    private readonly sealer: Sealer,
  ) {}

  /** The pairs of the deployment's suite, newest first: the order a reader tries them in. */
  pairs(session: Session): EncryptionKeyPair[] {
    return heldPairs(this.entries, session.config.keySuite).map((h) => h.pair);
  }

  /** The pair whose public key the registry holds, if this file holds it. */
  published(session: Session, keyHash: string): EncryptionKeyPair | undefined {
    return this.pairs(session).find((p) => keccak256(p.publicKey) === keyHash);
  }

  /** Seals `entries` and keeps them (same salt and passphrase); returns the new Keys. */
  async save(entries: readonly KeyEntry[]): Promise<Keys> {
    const file = await this.sealer.seal(hexToBytes(this.account), entries);
    await storeKeyFile(this.account, file);
    return new Keys(this.account, entries, this.sealer);
  }

  /** The sealed file as kept: what `medvault keys import FILE` reads beside the same account. */
  async exported(): Promise<Uint8Array> {
    const file = await storedKeyFile(this.account);
    if (!file) throw new UserFacingError("no key file is kept in this browser for this account");
    return file;
  }
}

/** A new account's keys (epoch 0), sealed under `passphrase` and kept before any is published. */
export async function createKeys(account: Address, passphrase: string): Promise<Keys> {
  if (passphrase.length < 8) throw new UserFacingError("choose a passphrase of at least 8 characters");
  const sealer = await Sealer.fromPassphrase(passphrase);
  return new Keys(account, [], sealer).save(addEpoch([], 0));
}

/** The keys kept for `account`, unsealed; a wrong passphrase is said so. */
export async function unlockKeys(account: Address, passphrase: string): Promise<Keys> {
  const file = await storedKeyFile(account);
  if (!file) throw new UserFacingError("no key file is kept in this browser for this account: set one up or import a backup");
  try {
    const { sealer, entries } = await openKeyFile(file, passphrase, "the key file kept in this browser");
    return new Keys(account, entries, sealer);
  } catch (error) {
    throw new UserFacingError((error as Error).message);
  }
}

/**
 * A backup (`medvault keys export`, which also holds the account key: that is dropped, the
 * wallet keeps the account) or a key file (`NAME.keys`, or one this page exported) of `account`,
 * added to the keys `held` (if unlocked) or kept as this browser's key file. The file's own
 * passphrase opens it; the result is sealed under `passphrase` (the browser's, or a new one).
 */
export async function importKeys(
  account: Address,
  data: Uint8Array,
  filePassphrase: string,
  held: Keys | undefined,
  passphrase: string,
): Promise<{ keys: Keys; added: number }> {
  let entries: readonly KeyEntry[];
  try {
    const header = readHeader(data, "the file");
    const owner = getAddress(bytesToHex(header.address));
    if (owner !== getAddress(account)) {
      throw new UserFacingError(`the file holds the keys of ${owner}, not of the connected account ${account}`);
    }
    const opened = await openKeyFile(data, filePassphrase, "the file");
    entries = opened.entries.some((e) => e.kind === 0)
      ? (await importBackup(data, filePassphrase, "the backup")).entries
      : opened.entries;
  } catch (error) {
    if (error instanceof UserFacingError) throw error;
    if (error instanceof KeystoreError || error instanceof IntegrityError) throw new UserFacingError(error.message);
    throw error;
  }
  if (held) {
    const { entries: merged, added } = mergeKeys(held.entries, entries);
    return { keys: await held.save(merged), added };
  }
  const sealer = await Sealer.fromPassphrase(passphrase);
  return { keys: await new Keys(account, [], sealer).save(mergeKeys([], entries).entries), added: entries.length };
}

/** Keys with a fresh pair of the next epoch, kept before it is published (rotation). */
export async function withNextEpoch(keys: Keys, session: Session): Promise<Keys> {
  return keys.save(addEpoch(keys.entries, nextEpoch(keys.entries, session.config.keySuite)));
}

/** The newest pair of the deployment's suite: the one to publish. */
export function newestPair(keys: Keys, session: Session): EncryptionKeyPair {
  const pair = keys.pairs(session)[0];
  if (!pair) throw new UserFacingError(`the key file holds no ${session.config.keySuite} key`);
  return pair;
}
