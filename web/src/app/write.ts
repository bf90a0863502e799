// Writing a new record for a patient: the browser does what `medvault record add` does (Python:
// client/records.py add_record), in the same formats, byte for byte: the readers and keepers are
// read from the chain, the record is enveloped and sealed under a fresh key bound to (patient,
// author, the author's next seq), the key wrapped for each reader and split among the keepers in
// one key bundle, both objects added to IPFS through the portal, and the pointer appended by the
// wallet. Nothing leaves the page unencrypted.
import {
  type Address,
  BaseError,
  bytesToHex,
  ContractFunctionRevertedError,
  getAddress,
  type Hex,
  parseEventLogs,
} from "viem";
import { equalBytes, IntegrityError } from "../formats/bytes";
import { cidToBytes, computeCid } from "../formats/cid";
import { packEnvelope } from "../formats/envelope";
import { escrowInfo, parsePublicKey, sealShare, UnusableKeyError, unwrapKey, wrapKey } from "../formats/hpke";
import type { Escrow, KeyBundle, Wrap } from "../formats/keybundle";
import { serialiseKeyBundle } from "../formats/keybundle";
import { associatedData, newRecordKey, type RecordContext, sealRecord } from "../formats/record";
import { contentHash } from "../formats/recordhash";
import { splitKey } from "../formats/shamir";
import type { Keys } from "./keys";
import { upload } from "./records";
import { publishedKey } from "./share";
import { type Session, UserFacingError, words } from "./session";

/** A stale seq means the same author wrote meanwhile (another tab or device of the account). */
export const STALE_SEQ_RETRIES = 3;

/** Events that create a grant, and the argument naming the grantee (Python: access.GRANT_EVENTS). */
const GRANT_EVENTS = [
  ["AccessGranted", "grantee"],
  ["RequestApproved", "researcher"],
  ["EmergencyAccessTaken", "provider"],
] as const;

// -- what the chain says about accounts

/** The published key of `account` if a record key can be wrapped for it in this deployment's
 * suite, else an UnusableKeyError saying why (Python: usable_key, with the key's own checks,
 * which Python makes when it seals). */
export async function wrappableKey(session: Session, account: Address): Promise<Uint8Array | UnusableKeyError> {
  const key = await publishedKey(session, account);
  if (!key) return new UnusableKeyError("it has published no encryption key that matches the registry's hash");
  let suite: string;
  try {
    suite = parsePublicKey(key);
  } catch (error) {
    if (error instanceof UnusableKeyError) return error;
    throw error;
  }
  if (suite !== session.config.keySuite) {
    return new UnusableKeyError(`the encryption key is a ${suite} key, and this deployment wraps for ${session.config.keySuite} keys`);
  }
  return key;
}

export const isRegistered = (session: Session, account: Address) =>
  session.read<boolean>("ParticipantRegistry", "isRegistered", [account]);

/** The categories `author` may add to `patient`'s log as a care-team writer, and its next seq. */
export async function writerOf(session: Session, patient: Address, author: Address) {
  const [categories, nextSeq] = await session.read<[number, bigint]>("RecordRegistry", "writerOf", [patient, author]);
  return { categories, nextSeq };
}

/** The patient's keepers in share order, the threshold and the re-escrow bundle's binary CID ("0x" if none). */
export async function keepersOf(session: Session, patient: Address) {
  const [keepers, threshold, escrowCid] = await session.read<[Address[], number, Hex]>("KeeperDirectory", "keepersOf", [patient]);
  return { keepers: keepers.map((k) => getAddress(k)), threshold: Number(threshold), escrowCid };
}

export interface Grant {
  grantee: Address;
  validFrom: bigint;
  validUntil: bigint;
  scopes: number;
  purpose: number;
}

/** Every grant the patient holds now (expired ones included, revoked ones not), grantees in the
 * order Python lists them: by event kind, then by event. */
export async function grantsOf(session: Session, patient: Address): Promise<Grant[]> {
  const consent = session.contract("ConsentManager");
  const fromBlock = BigInt(session.config.deploymentBlock);
  const lists = await Promise.all(
    GRANT_EVENTS.map(([eventName]) => session.chain.getContractEvents({ ...consent, eventName, args: { patient }, fromBlock })),
  );
  const grantees = [
    ...new Set(lists.flatMap((events, i) => events.map((e) => getAddress((e.args as Record<string, Address>)[GRANT_EVENTS[i]![1]]!)))),
  ];
  const grants = await Promise.all(
    grantees.map((grantee) =>
      session.read<{ validFrom: number; validUntil: number; scopes: number; purpose: number }>("ConsentManager", "grantOf", [patient, grantee]),
    ),
  );
  return grants.flatMap((g, i) =>
    BigInt(g.validUntil) === 0n
      ? []
      : [{ grantee: grantees[i]!, validFrom: BigInt(g.validFrom), validUntil: BigInt(g.validUntil), scopes: g.scopes, purpose: g.purpose }],
  );
}

/** The patient, the author (if registered) and every registered grantee whose grant covers
 * `category` and is open now (chain time in [validFrom, validUntil)). A future-dated grantee
 * gets no wrap: it reads through the keepers once its window opens. */
export async function readersOfNewRecord(session: Session, patient: Address, author: Address, category: number): Promise<Address[]> {
  const [authorRegistered, now, grants] = await Promise.all([
    author !== patient ? isRegistered(session, author) : Promise.resolve(false),
    session.now(),
    grantsOf(session, patient),
  ]);
  const readers: Address[] = [patient];
  if (authorRegistered) readers.push(author);
  const covering = grants.filter((g) => g.validFrom <= now && now < g.validUntil && ((g.scopes >> category) & 1) === 1);
  const registered = await Promise.all(covering.map((g) => isRegistered(session, g.grantee)));
  covering.forEach((g, i) => registered[i] && readers.push(g.grantee));
  return [...new Set(readers)];
}

// -- sealing: no chain, so the unit tests hold it to the formats

export interface Recipients {
  /** Each reader in order with its published key, or why that key cannot be used. */
  readers: { address: Address; key: Uint8Array | UnusableKeyError }[];
  /** The keepers whose keys a share can be sealed to, in share order, and the threshold. */
  escrow?: { threshold: number; keepers: { address: Address; key: Uint8Array }[] };
  /** Keepers left out of the split, and why. */
  skipped: Map<Address, string>;
}

export interface SealedRecord {
  key: Uint8Array;
  blob: Uint8Array;
  bundle: KeyBundle;
  bundleBytes: Uint8Array;
  /** The readers a wrap was made for, and the others, with why not. */
  readers: Address[];
  skipped: Map<Address, string>;
}

/** `plaintext` (an envelope) sealed under a fresh key for the record `context` names, the key
 * wrapped for each usable reader and split among the keepers: Python add_record's objects. The
 * patient's and the author's keys must be usable; another reader's that is not is skipped. */
export async function sealNewRecord(
  context: RecordContext,
  plaintext: Uint8Array,
  recipients: Recipients,
  suite: string,
  key: Uint8Array = newRecordKey(),
): Promise<SealedRecord> {
  const blob = await sealRecord(plaintext, key, context);
  const aad = associatedData(context);
  const escrow = recipients.escrow?.keepers.length ? await escrowKey(aad, key, recipients.escrow) : undefined;
  const wraps: Wrap[] = [];
  const skipped = new Map<Address, string>();
  for (const { address: reader, key: published } of recipients.readers) {
    try {
      if (published instanceof Error) throw published;
      wraps.push({ author: context.author, seq: BigInt(context.seq), reader, wrap: await wrapKey(key, published, aad, reader) });
    } catch (error) {
      if (!(error instanceof UnusableKeyError)) throw error;
      const whose = same(reader, context.patient) ? "the patient" : same(reader, context.author) ? "the author" : undefined;
      if (whose) {
        throw new UserFacingError(
          `No record can be written for ${context.patient}: the encryption key ${whose} ${reader} published cannot be used ` +
            `(${error.message}); ${whose} must publish a new one.`,
        );
      }
      skipped.set(reader, error.message);
    }
  }
  for (const [keeper, why] of recipients.skipped) skipped.set(keeper, why);
  const bundle: KeyBundle = { ...bundleHeader(context), wraps, suite };
  if (escrow) bundle.escrow = escrow;
  return { key, blob, bundle, bundleBytes: serialiseKeyBundle(bundle), readers: wraps.map((w) => w.reader as Address), skipped };
}

/** `key` split `threshold`-of-n among the keepers, share x sealed to keeper x's published key
 * under escrowInfo (Python: formats.keybundle.escrow_key). */
export async function escrowKey(aad: Uint8Array, key: Uint8Array, escrow: NonNullable<Recipients["escrow"]>): Promise<Escrow> {
  const shares = splitKey(key, escrow.threshold, escrow.keepers.length);
  return {
    threshold: escrow.threshold,
    shares: await Promise.all(
      escrow.keepers.map(async ({ address, key: published }, i) => {
        const { x, share } = shares[i]!;
        return { keeper: address, x, wrap: await sealShare(share, published, escrowInfo(aad, address)) };
      }),
    ),
  };
}

const bundleHeader = (context: RecordContext) => ({
  chainId: BigInt(context.chainId),
  registry: getAddress(context.registry),
  patient: getAddress(context.patient),
});

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

// -- the chain and IPFS

/** The readers' and keepers' keys for a new record of `patient` by `author` in `category`. */
async function recipientsOf(session: Session, patient: Address, author: Address, category: number): Promise<Recipients> {
  const [readers, keepers] = await Promise.all([readersOfNewRecord(session, patient, author, category), keepersOf(session, patient)]);
  const keyOf = (account: Address) => wrappableKey(session, account);
  const [readerKeys, keeperKeys] = await Promise.all([Promise.all(readers.map(keyOf)), Promise.all(keepers.keepers.map(keyOf))]);
  const skipped = new Map<Address, string>();
  const usable: { address: Address; key: Uint8Array }[] = [];
  keepers.keepers.forEach((address, i) => {
    const key = keeperKeys[i]!;
    if (key instanceof Error) skipped.set(address, `keeper left out of the key escrow: ${key.message}`);
    else usable.push({ address, key });
  });
  if (skipped.size && usable.length < keepers.threshold) {
    throw new UserFacingError(
      `No record can be written for ${patient}: only ${usable.length} of its ${keepers.keepers.length} keepers publish a ` +
        `usable encryption key, fewer than its threshold of ${keepers.threshold} ` +
        `(${[...skipped].map(([k, why]) => `${k}: ${why}`).join("; ")}); the patient must choose other keepers.`,
    );
  }
  return {
    readers: readers.map((address, i) => ({ address, key: readerKeys[i]! })),
    escrow: usable.length ? { threshold: keepers.threshold, keepers: usable } : undefined,
    skipped,
  };
}

export interface AddedRecord {
  index: bigint;
  seq: bigint;
  cid: string;
  keysCid: string;
  /** Who got a wrap of the key, and who was left out (grantees, keepers), with why. */
  readers: Address[];
  skipped: Map<Address, string>;
  transaction: Hex;
}

/**
 * Encrypts `body` for `patient` and appends its pointer from the connected account (Python:
 * Records.add_record). The call is tried against the chain (with the CIDs computed here) before
 * anything is uploaded, so a write the chain would refuse leaves nothing behind. `keys`, the
 * author's if unlocked, open the author's own wrap before anything is sent: the record will be
 * readable by whoever wrote it.
 */
export async function addRecord(
  session: Session,
  keys: Keys | undefined,
  patient: Address,
  body: Uint8Array,
  contentType: string,
  name: string,
  category: number,
): Promise<AddedRecord> {
  patient = getAddress(patient);
  const author = session.account;
  if (!Number.isInteger(category) || category < 0 || category > 5) throw new UserFacingError(`${category} is not a record category`);
  if (!(await isRegistered(session, patient))) {
    throw new UserFacingError(`${session.name(patient)} has not set up an encryption key yet: no record can be written for them.`);
  }
  const recipients = await recipientsOf(session, patient, author, category);
  const plaintext = packEnvelope(body, contentType, name);
  for (let attempt = 0; attempt < STALE_SEQ_RETRIES; attempt++) {
    const { nextSeq: seq } = await writerOf(session, patient, author);
    const context: RecordContext = { chainId: session.config.chainId, registry: session.contract("RecordRegistry").address, patient, author, seq };
    const sealed = await sealNewRecord(context, plaintext, recipients, session.config.keySuite);
    if (sealed.blob.length > session.config.maxRecordBytes) {
      throw new UserFacingError(
        `The encrypted record is ${sealed.blob.length.toLocaleString("en-US")} bytes, over the portal's limit of ` +
          `${session.config.maxRecordBytes.toLocaleString("en-US")} bytes.`,
      );
    }
    if (keys) await checkOwnWrap(session, keys, sealed, context);
    const [cid, keysCid] = await Promise.all([computeCid(sealed.blob), computeCid(sealed.bundleBytes)]);
    const args = [
      patient, seq, bytesToHex(cidToBytes(cid)), bytesToHex(await contentHash(sealed.blob)), category, bytesToHex(cidToBytes(keysCid)),
    ] as const; // prettier-ignore
    const refusal = await dryRun(session, "RecordRegistry", "addRecord", args, "RecordRegistryStaleSeq");
    if (refusal === "RecordRegistryStaleSeq") continue; // the same author wrote meanwhile: seal again for its next seq
    // upload checks the node's CID against the bytes' own, computed here as above.
    await upload(sealed.blob, "the record");
    await upload(sealed.bundleBytes, "its key bundle");
    // From here a refusal (the same author writing in between, the user saying no in the wallet)
    // leaves the two objects in IPFS with nothing on chain pointing at them: the portal cannot
    // unpin, and what they hold is ciphertext and wraps for this record only.
    let receipt;
    try {
      receipt = await session.transact("RecordRegistry", "addRecord", args);
    } catch (error) {
      if (error instanceof UserFacingError && error.message.includes("RecordRegistryStaleSeq")) continue;
      throw error;
    }
    const added = parseEventLogs({ abi: session.contract("RecordRegistry").abi, logs: receipt.logs, eventName: "RecordAdded" })
      .map((log) => ({ log, args: log.args as unknown as { patient: Address; index: bigint; author: Address; seq: bigint } }))
      .find(({ log, args: a }) => same(log.address, session.contract("RecordRegistry").address) && same(a.patient, patient) && same(a.author, author) && a.seq === seq); // prettier-ignore
    if (!added) throw new IntegrityError(`transaction ${receipt.transactionHash} added no record ${seq} by ${author} for ${patient}`);
    return {
      index: added.args.index, seq, cid, keysCid, readers: sealed.readers, skipped: sealed.skipped, transaction: receipt.transactionHash,
    }; // prettier-ignore
  }
  throw new UserFacingError(
    `Your account kept adding other records to ${session.name(patient)}'s log while this one was sealed (${STALE_SEQ_RETRIES} times): nothing was added; try again.`,
  );
}

async function checkOwnWrap(session: Session, keys: Keys, sealed: SealedRecord, context: RecordContext) {
  const keyHash = await session.read<Hex>("ParticipantRegistry", "encryptionKeyHash", [session.account]);
  const pair = keys.published(session, keyHash);
  const own = sealed.bundle.wraps.find((w) => same(w.reader, session.account));
  if (!pair || !own) return; // the file does not hold the published key: the chain's key is what counts
  const opened = await unwrapKey(own.wrap, pair, associatedData(context), session.account);
  if (!equalBytes(opened, sealed.key)) throw new IntegrityError("the author's own wrap does not open to the record key");
}

/**
 * Tries `functionName(args)` against the chain without sending it: undefined if it would pass,
 * `expected` if the chain would refuse with that custom error, else a UserFacingError in words.
 */
export async function dryRun(
  session: Session,
  name: "RecordRegistry" | "ConsentManager",
  functionName: string,
  args: readonly unknown[],
  expected?: string,
): Promise<string | undefined> {
  try {
    await session.chain.simulateContract({ ...session.contract(name), functionName, args, account: session.account });
    return undefined;
  } catch (error) {
    const revert = error instanceof BaseError ? error.walk((e) => e instanceof ContractFunctionRevertedError) : undefined;
    if (revert instanceof ContractFunctionRevertedError && revert.data?.errorName === expected) return expected;
    throw new UserFacingError(`The chain would refuse this: ${words(error)}. Nothing was sent.`);
  }
}
