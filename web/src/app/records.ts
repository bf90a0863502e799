// A patient's records as the chain and IPFS give them, checked before anything is shown: the
// RecordAdded events must rebuild the hash chain the registry holds (logOf), every object must
// hash to its CID and the ciphertext to its on-chain contentHash, and only then is a key looked
// for and the record decrypted. Python: client/recordlog.py and client/records.py.
import { type Address, getAddress, type Hex } from "viem";
import { DecryptionError, equalBytes, IntegrityError } from "../formats/bytes";
import { cidFromBytes, computeCid } from "../formats/cid";
import { unpackEnvelope } from "../formats/envelope";
import { type EncryptionKeyPair, unwrapKey } from "../formats/hpke";
import { type KeyBundle, parseKeyBundle, wrapsFor } from "../formats/keybundle";
import { associatedData, openRecord, type RecordContext } from "../formats/record";
import { CATEGORIES } from "../formats/consent";
import { contentHash, GENESIS, recordHash } from "../formats/recordhash";
import type { Session } from "./session";

export const DISPUTED = 1;
export const HIDDEN = 2;

export interface RecordPointer {
  patient: Address;
  index: bigint;
  author: Address;
  seq: bigint;
  category: number;
  timestamp: bigint;
  contentHash: Hex;
  cid: string;
  keysCid: string;
  recordHash: Hex;
  flags: number;
}

export interface OpenedRecord {
  pointer: RecordPointer;
  contentType: string;
  name: string;
  body: Uint8Array;
  /** How the key was obtained: the reader's own wrap, a shared bundle, or the keepers. */
  via: "wrap" | "shared" | "keepers";
}

/** A record that cannot be shown, and why: the page says this instead of any plaintext. */
export class RecordProblem extends Error {
  constructor(
    readonly index: bigint,
    message: string,
    readonly integrity: boolean,
  ) {
    super(message);
  }
}

export const categoryName = (category: number) => CATEGORIES[category] ?? `category ${category}`;

/** Every record pointer of `patient`, oldest first, checked against the registry's head. */
export async function recordLog(session: Session, patient: Address): Promise<RecordPointer[]> {
  const registry = session.contract("RecordRegistry");
  const [events, [head, count], flagged] = await Promise.all([
    session.chain.getContractEvents({
      ...registry,
      eventName: "RecordAdded",
      args: { patient },
      fromBlock: BigInt(session.config.deploymentBlock),
    }),
    session.read<[Hex, bigint]>("RecordRegistry", "logOf", [patient]),
    session.chain.getContractEvents({
      ...registry,
      eventName: "RecordFlagged",
      args: { patient },
      fromBlock: BigInt(session.config.deploymentBlock),
    }),
  ]);
  const flags = new Map<bigint, number>();
  for (const e of flagged) {
    const a = e.args as { index: bigint; flags: number };
    flags.set(a.index, a.flags);
  }
  const pointers: RecordPointer[] = [];
  let previous: Hex = GENESIS;
  const sorted = [...events].sort((x, y) => Number((x.args as { index: bigint }).index - (y.args as { index: bigint }).index));
  for (const event of sorted) {
    const a = event.args as {
      patient: Address; index: bigint; author: Address; seq: bigint; recordHash: Hex; category: number;
      timestamp: bigint; contentHash: Hex; cid: Hex; keysCid: Hex;
    }; // prettier-ignore
    if (a.index !== BigInt(pointers.length)) {
      throw new IntegrityError(`the chain's events skip or repeat record ${pointers.length} of ${patient}`);
    }
    const rebuilt = recordHash({ ...a, previous });
    if (rebuilt !== a.recordHash) {
      throw new IntegrityError(`record ${a.index} of ${patient}: its event does not hash to the hash it names`);
    }
    previous = rebuilt;
    pointers.push({
      patient: getAddress(a.patient),
      index: a.index,
      author: getAddress(a.author),
      seq: a.seq,
      category: a.category,
      timestamp: a.timestamp,
      contentHash: a.contentHash,
      cid: pointerCid(a.cid, `record ${a.index}`),
      keysCid: pointerCid(a.keysCid, `the key bundle of record ${a.index}`),
      recordHash: a.recordHash,
      flags: flags.get(a.index) ?? 0,
    });
  }
  if (BigInt(pointers.length) !== count || previous !== head) {
    throw new IntegrityError(
      `the RPC endpoint's events of ${patient} (${pointers.length} records) do not rebuild the registry's head (${count} records)`,
    );
  }
  return pointers;
}

function pointerCid(binary: Hex, what: string): string {
  try {
    return cidFromBytes(hexBytes(binary));
  } catch (error) {
    return `invalid:${what}: ${(error as Error).message}`;
  }
}

const hexBytes = (hex: Hex) => Uint8Array.from(hex.slice(2).match(/../g) ?? [], (b) => parseInt(b, 16));

/** The bytes IPFS holds under `cid`, refused unless they hash to that CID. */
export async function fetchVerified(cid: string, what: string, limit: number): Promise<Uint8Array> {
  if (cid.startsWith("invalid:")) throw new IntegrityError(`${what} is not a usable CID (${cid.slice(8)})`);
  const answer = await fetch(`/ipfs/${cid}`);
  if (!answer.ok) throw new RecordFetchError(`${what} ${cid} cannot be fetched (HTTP ${answer.status})`);
  const length = Number(answer.headers.get("Content-Length") ?? "0");
  if (length > limit) throw new IntegrityError(`${what} ${cid} is ${length} bytes, over the ${limit}-byte limit`);
  const data = new Uint8Array(await answer.arrayBuffer());
  if ((await computeCid(data)) !== cid) {
    throw new IntegrityError(`the IPFS node served other bytes than ${what} ${cid}: they do not hash to its CID`);
  }
  return data;
}

export class RecordFetchError extends Error {}

export const contextOf = (session: Session, p: RecordPointer): RecordContext => ({
  chainId: session.config.chainId,
  registry: session.contract("RecordRegistry").address,
  patient: p.patient,
  author: p.author,
  seq: p.seq,
});

/** A source of a record key other than the reader's own wraps (shared bundles, keepers). */
export type KeySource = (pointer: RecordPointer, bundle: KeyBundle, blob: Uint8Array) => Promise<Uint8Array | undefined>;

/**
 * Fetches, checks and decrypts one record for `reader`, who holds `pairs` (its key file's, newest
 * first). Every failure is a RecordProblem; `integrity` says the data was altered somewhere.
 */
export async function readRecord(
  session: Session,
  pointer: RecordPointer,
  reader: Address,
  pairs: readonly EncryptionKeyPair[],
  others: { via: OpenedRecord["via"]; source: KeySource }[] = [],
): Promise<OpenedRecord> {
  const { index } = pointer;
  const fail = (error: unknown): never => {
    if (error instanceof RecordProblem) throw error;
    const integrity = error instanceof IntegrityError || error instanceof DecryptionError;
    throw new RecordProblem(index, (error as Error).message, integrity);
  };
  try {
    const limit = session.config.maxRecordBytes;
    const blob = await fetchVerified(pointer.cid, `record ${index}'s ciphertext`, limit);
    if (!equalBytes(await contentHash(blob), hexBytes(pointer.contentHash))) {
      throw new IntegrityError(`record ${index}'s ciphertext does not match the content hash on chain`);
    }
    const bundle = parseKeyBundle(
      await fetchVerified(pointer.keysCid, `record ${index}'s key bundle`, 1 << 20),
      pointer.patient,
      `record ${index}'s key bundle`,
    );
    const context = contextOf(session, pointer);
    let key = await ownKey(bundle, pointer, reader, pairs, context);
    let via: OpenedRecord["via"] = "wrap";
    for (const other of others) {
      if (key) break;
      key = await other.source(pointer, bundle, blob);
      via = other.via;
    }
    if (!key) throw new RecordProblem(index, `no key of record ${index} was wrapped for you, shared with you, or released`, false);
    const opened = unpackEnvelope(await openRecord(blob, key, context));
    return { pointer, contentType: opened.contentType, name: opened.name, body: opened.body, via };
  } catch (error) {
    return fail(error);
  }
}

async function ownKey(
  bundle: KeyBundle,
  pointer: RecordPointer,
  reader: Address,
  pairs: readonly EncryptionKeyPair[],
  context: RecordContext,
): Promise<Uint8Array | undefined> {
  const aad = associatedData(context);
  for (const wrap of wrapsFor(bundle, reader, pointer.author, pointer.seq)) {
    for (const pair of pairs) {
      try {
        return await unwrapKey(wrap, pair, aad, reader);
      } catch (error) {
        if (!(error instanceof DecryptionError)) throw error;
      }
    }
  }
  return undefined;
}

/** The key of `pointer` from `reader`'s own wraps in the record's bundle, if one opens. */
export async function ownRecordKey(
  session: Session,
  pointer: RecordPointer,
  reader: Address,
  pairs: readonly EncryptionKeyPair[],
): Promise<Uint8Array | undefined> {
  const what = `record ${pointer.index}'s key bundle`;
  const bundle = parseKeyBundle(await fetchVerified(pointer.keysCid, what, 1 << 20), pointer.patient, what);
  return ownKey(bundle, pointer, reader, pairs, contextOf(session, pointer));
}

/** Stores `data` in IPFS through the portal; its CID is computed here too and must agree. */
export async function upload(data: Uint8Array, what: string): Promise<string> {
  const answer = await fetch("/ipfs", {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: data as Uint8Array<ArrayBuffer>,
  });
  if (!answer.ok) throw new RecordFetchError(`${what} could not be stored in IPFS (HTTP ${answer.status})`);
  const { cid } = (await answer.json()) as { cid: string };
  const expected = await computeCid(data);
  if (cid !== expected) throw new IntegrityError(`the IPFS node stored ${what} as ${cid}, but its bytes hash to ${expected}`);
  return cid;
}
