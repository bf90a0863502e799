// Record keys a reader holds no wrap of in the record's own bundle: those the patient shared in a
// later bundle (KeysShared: grants, approvals, key rotations), and those the patient's keepers
// release (Python: client/records.py _wraps, client/keepers.py released_key). Both are KeySources
// for readRecord (records.ts); every key is checked by decrypting the record before it is used.
//
// Keepers are asked through the portal (POST /keepers/<keeper>/v1/key-shares), which forwards to
// the URL the keeper announced on chain: the page's CSP lets it talk to its own origin only. Each
// request is an EIP-712 KeyRequest the wallet signs, one per keeper and record (the keeper is part
// of what is signed, so one signature cannot serve two keepers).
import { type Address, getAddress, type Hex, hexToBytes } from "viem";
import { DecryptionError } from "../formats/bytes";
import { cidFromBytes } from "../formats/cid";
import { type EncryptionKeyPair, openShare, releaseInfo, unwrapKey } from "../formats/hpke";
import { askKeeper, Refusal, signKeyRequest } from "../formats/keeper";
import { type Escrow, type KeyBundle, parseKeyBundle, servedEscrow, unwrapFor } from "../formats/keybundle";
import { associatedData, openRecord, type RecordContext } from "../formats/record";
import { combineKey, type KeyShare } from "../formats/shamir";
import type { Keys } from "./keys";
import { categoryName, contextOf, fetchVerified, type KeySource, type RecordPointer } from "./records";
import { type Session, UserFacingError } from "./session";
import { when } from "./ui";

const BUNDLE_LIMIT = 1 << 20; // bytes of a key bundle read, as records.ts reads them
const KEEPER_TIMEOUT_MS = 20_000; // the keeper's own 10 s budget, and the portal's hop
const READS_TTL_MS = 60_000; // how long one keeper set, key hash and chain time serve (issuedAt: +-300 s)

// -- keys shared in later bundles

/** The record key from the first of `reader`'s wraps in `bundle` that one of `pairs` opens. */
export function openFrom(bundle: KeyBundle, pointer: RecordPointer, reader: Address, pairs: readonly EncryptionKeyPair[], aad: Uint8Array) {
  return unwrapFor(bundle, reader, pointer.author, pointer.seq, async (wrap) => {
    for (const pair of pairs) {
      try {
        return await unwrapKey(wrap, pair, aad, reader);
      } catch (error) {
        if (!(error instanceof DecryptionError)) throw error;
      }
    }
    throw new DecryptionError(`no key of yours opens the wrap of record ${pointer.index}`);
  });
}

/**
 * The keys `patient` shared with the connected account after the records were written
 * (KeysShared events, newest first, each bundle fetched once and checked against its CID); a
 * bundle that cannot be fetched or is not the patient's is passed over for the rest.
 */
export function sharedKeySource(session: Session, pairs: readonly EncryptionKeyPair[]): KeySource {
  const reader = session.account;
  const bundles = new Map<string, Promise<KeyBundle[]>>(); // by patient
  const sharedWith = (patient: Address) => {
    const key = patient.toLowerCase();
    if (!bundles.has(key)) bundles.set(key, sharedBundles(session, patient, reader));
    return bundles.get(key)!;
  };
  return async (pointer) => {
    if (pairs.length === 0) return undefined;
    const aad = associatedData(contextOf(session, pointer));
    for (const bundle of await sharedWith(pointer.patient)) {
      const key = await openFrom(bundle, pointer, reader, pairs, aad);
      if (key) return key;
    }
    return undefined;
  };
}

async function sharedBundles(session: Session, patient: Address, grantee: Address): Promise<KeyBundle[]> {
  const events = await session.chain.getContractEvents({
    ...session.contract("ConsentManager"),
    eventName: "KeysShared",
    args: { patient, grantee },
    fromBlock: BigInt(session.config.deploymentBlock),
  });
  const found = await Promise.all(
    [...events].reverse().map(async (event) => {
      try {
        const cid = cidFromBytes(hexToBytes((event.args as { keysCid: Hex }).keysCid));
        return [parseKeyBundle(await fetchVerified(cid, "a bundle of shared keys", BUNDLE_LIMIT), patient, `the shared key bundle ${cid}`)];
      } catch {
        return []; // anyone's grant, a delegate's or a lying node's: the others still count
      }
    }),
  );
  return found.flat();
}

// -- keys the keepers release

/** What each refusal means, for the sentence a reader sees. */
export const REFUSAL_WORDS: Record<string, string> = {
  malformed: "the keeper could not read the request",
  "bad-signature": "the request's signature was not accepted",
  stale: "the request's time is too far from the chain's",
  "wrong-keeper": "it is not this patient's keeper",
  "unknown-record": "the patient's log has no such record",
  "no-share": "it holds no share of this record's key",
  "bad-record": "the record's pointer or key bundle is unusable",
  "no-grant": "the patient never granted you access",
  revoked: "the patient revoked your access",
  expired: "the grant's window has closed",
  "not-yet-valid": "the grant's window has not opened yet",
  "out-of-scope": "the record's category is outside your grant",
  "no-encryption-key": "you have no published encryption key",
  integrity: "the chain or IPFS gave the keeper data that fails verification",
  "chain-unavailable": "the keeper's Ethereum node does not answer",
  "chain-stale": "the keeper's view of the chain is behind",
  "chain-disagrees": "the keeper's chain endpoints disagree",
  "rate-limited": "you asked too often: try again later",
  "ipfs-unavailable": "the keeper's IPFS node does not answer",
  "too-large": "the keeper set's re-escrow bundle is over the size limit",
  internal: "the keeper failed",
  unreachable: "it did not answer",
  "bad-response": "its answer made no sense or did not open",
  "no-url": "it never announced where it can be reached",
  "bad-url": "the address it announced may not be contacted",
};

/** Fewer than `threshold` keepers released a share that opens the record; `refusals` by keeper. */
export class KeepersRefusedError extends Error {
  override name = "KeepersRefusedError";
  constructor(
    readonly released: number,
    readonly threshold: number,
    readonly asked: number,
    readonly refusals: Map<string, Refusal>,
  ) {
    super(refusalSentence(released, threshold, asked, refusals));
  }
}

/** E.g. "2 of 3 keepers refused: expired (the grant's window has closed). 1 of the 2 shares needed was released." */
export function refusalSentence(released: number, threshold: number, asked: number, refusals: Map<string, Refusal>): string {
  const special = refusals.get("*");
  if (special?.reason === "no-keeper") return "No keeper could be asked: no keeper the record's escrow names is in the patient's keeper set on chain.";
  const counts = new Map<string, number>();
  const details = new Map<string, string>();
  for (const [keeper, refusal] of refusals) {
    if (keeper === "*") continue;
    counts.set(refusal.reason, (counts.get(refusal.reason) ?? 0) + 1);
    if (!details.has(refusal.reason)) details.set(refusal.reason, refusal.detail);
  }
  const refused = [...counts.values()].reduce((a, b) => a + b, 0);
  const several = counts.size > 1;
  const reasons = [...counts]
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, n]) => `${several ? `${n} ` : ""}${reason} (${REFUSAL_WORDS[reason] ?? details.get(reason) ?? "no reason given"})`)
    .join(", ");
  const parts = refused ? [`${refused} of ${asked} keeper${asked === 1 ? "" : "s"} refused: ${reasons}.`] : [];
  if (special?.reason === "bad-share") parts.push(`The ${released} released shares do not open the record: ${special.detail}.`);
  else parts.push(`${released} of the ${threshold} share${threshold === 1 ? "" : "s"} needed ${released === 1 ? "was" : "were"} released.`);
  return parts.join(" ");
}

/** Asks one keeper for share `x`; `wanted()` turns false once the key is found (no more signing). */
export type AskKeeper = (keeper: Address, x: number, wanted: () => boolean) => Promise<Uint8Array>;

/**
 * The record key from the keepers of `escrow` that are in the chain's set `onChain`: all asked at
 * once, shares combined as they come, and the first combination of `threshold` that `opens` the
 * record returned (Python: released_key). KeepersRefusedError when no `threshold` of them do.
 * Any error but a Refusal (the user declining to sign, say) ends it at once.
 */
export async function releasedKey(
  escrow: Escrow,
  onChain: readonly Address[],
  ask: AskKeeper,
  opens: (key: Uint8Array) => Promise<boolean>,
): Promise<Uint8Array> {
  const { threshold } = escrow;
  const members = new Set(onChain.map((k) => k.toLowerCase()));
  const expected = new Map<Address, number>();
  for (const share of escrow.shares) if (members.has(share.keeper.toLowerCase())) expected.set(getAddress(share.keeper), share.x);
  const refusals = new Map<string, Refusal>();
  if (expected.size === 0) {
    refusals.set("*", new Refusal("no-keeper", "no keeper the escrow names is in the patient's keeper set on chain", 0));
    throw new KeepersRefusedError(0, threshold, 0, refusals);
  }
  let done = false;
  const wanted = () => !done;
  type Answer = { keeper: Address; share?: KeyShare; refusal?: Refusal; error?: unknown };
  const pending = new Map<Address, Promise<Answer>>();
  for (const [keeper, x] of expected) {
    pending.set(
      keeper,
      ask(keeper, x, wanted).then(
        (share): Answer => ({ keeper, share: { x, share } }),
        (error: unknown): Answer => (error instanceof Refusal ? { keeper, refusal: error } : { keeper, error }),
      ),
    );
  }
  const shares: KeyShare[] = [];
  try {
    while (pending.size) {
      const answer = await Promise.race(pending.values());
      pending.delete(answer.keeper);
      if (answer.error !== undefined) throw answer.error;
      if (answer.refusal) {
        refusals.set(answer.keeper, answer.refusal);
        continue;
      }
      const share = answer.share!;
      shares.push(share);
      // Only the combinations with the new share are new.
      for (const others of combinations(shares.slice(0, -1), threshold - 1)) {
        const key = combineKey([...others, share]);
        if (await opens(key)) return key;
      }
    }
  } finally {
    done = true;
  }
  if (shares.length >= threshold) {
    refusals.set("*", new Refusal("bad-share", `no ${threshold} of the ${shares.length} released shares open the record`, 0));
  }
  throw new KeepersRefusedError(shares.length, threshold, expected.size, refusals);
}

function* combinations<T>(items: readonly T[], size: number, from = 0): Generator<T[]> {
  if (size === 0) {
    yield [];
    return;
  }
  for (let i = from; i <= items.length - size; i++) {
    for (const rest of combinations(items, size - 1, i + 1)) yield [items[i]!, ...rest];
  }
}

/** Whether `key` opens `blob`, the ciphertext of the record `context` names. */
export async function opensRecord(blob: Uint8Array, key: Uint8Array, context: RecordContext): Promise<boolean> {
  try {
    await openRecord(blob, key, context);
    return true;
  } catch (error) {
    if (error instanceof DecryptionError) return false;
    throw error;
  }
}

/**
 * Why the chain does not let `reader` read `pointer` now, or undefined if it does (Python:
 * Access.access_denial): asked before any keeper is, so that no signature is spent on a record
 * every keeper would refuse.
 */
export async function accessDenial(session: Session, pointer: RecordPointer, reader: Address): Promise<string | undefined> {
  const { patient, index, category } = pointer;
  if ([patient, pointer.author].some((a) => a.toLowerCase() === reader.toLowerCase())) return undefined;
  if (await session.read<boolean>("ConsentManager", "canReadRecord", [patient, reader, category, pointer.timestamp])) return undefined;
  const [grant, now] = await Promise.all([
    session.read<{ validFrom: number; validUntil: number; scopes: number }>("ConsentManager", "grantOf", [patient, reader]),
    session.now(),
  ]);
  const [from, until] = [BigInt(grant.validFrom), BigInt(grant.validUntil)];
  if (until === 0n) return "the patient has not granted you access, or revoked it";
  if (now >= until) return `your grant expired at ${when(until)}`;
  if (now < from) return `your grant starts at ${when(from)}`;
  if (((grant.scopes >> category) & 1) === 0) return `record ${index} is ${categoryName(category)}, outside your grant's scope`;
  return `record ${index} was written before your grant opened, and your grant does not open earlier records (or what it rests on is gone)`;
}

interface KeeperReads {
  keepers: Address[];
  reescrow: KeyBundle | undefined;
  keyHash: Hex;
  now: bigint;
  at: number;
}

/**
 * A KeySource asking `patient`'s keepers for the connected account: the escrow of the record
 * (the keeper set's re-escrow entry, else the record's own), one signed KeyRequest per keeper,
 * shares opened with the account's published key (from `keys`, which must be unlocked) and
 * combined. `base` is where the portal's keeper proxy lives; `fetch` is for tests.
 */
export function keeperSource(
  session: Session,
  keys: Keys | undefined,
  { base = location.origin, fetch: send = fetch }: { base?: string; fetch?: typeof fetch } = {},
): KeySource {
  const reads = new Map<string, Promise<KeeperReads>>();
  let signing: Promise<unknown> = Promise.resolve(); // one wallet prompt at a time
  const readsOf = (patient: Address) => {
    const cached = reads.get(patient.toLowerCase());
    const fresh = async (): Promise<KeeperReads> => {
      const [[keepers, , escrowCid], keyHash, now] = await Promise.all([
        session.read<[Address[], number, Hex]>("KeeperDirectory", "keepersOf", [patient]),
        session.read<Hex>("ParticipantRegistry", "encryptionKeyHash", [session.account]),
        session.now(),
      ]);
      let reescrow: KeyBundle | undefined;
      if (escrowCid !== "0x") {
        const cid = cidFromBytes(hexToBytes(escrowCid));
        const what = `the keeper set's re-escrow bundle ${cid}`;
        reescrow = parseKeyBundle(await fetchVerified(cid, what, session.config.maxRecordBytes), patient, what);
      }
      return { keepers: keepers.map((k) => getAddress(k)), reescrow, keyHash, now, at: Date.now() };
    };
    return (async () => {
      const held = cached && (await cached.catch(() => undefined));
      if (held && Date.now() - held.at < READS_TTL_MS) return held;
      const next = fresh();
      reads.set(patient.toLowerCase(), next);
      return next;
    })();
  };

  return async (pointer, bundle, blob) => {
    if (!keys) throw new UserFacingError("Unlock your key first: the keepers seal the record key to your published key.");
    const denial = await accessDenial(session, pointer, session.account);
    if (denial) throw new UserFacingError(`The chain does not let you read this record now: ${denial}. The keepers were not asked.`);
    const { keepers, reescrow, keyHash, now } = await readsOf(pointer.patient);
    const escrow = await servedEscrow(pointer.index, reescrow, () => bundle);
    if (!escrow) throw new UserFacingError(`No key of record ${pointer.index} was wrapped for you, nor escrowed with keepers.`);
    if (BigInt(keyHash) === 0n) throw new UserFacingError("You have not published an encryption key: the keepers have nothing to seal the key to.");
    const pair = keys.published(session, keyHash);
    if (!pair) throw new UserFacingError("Your unlocked key file does not hold the encryption key you published: import the key file that does.");
    const reader = session.account;
    const context = contextOf(session, pointer);
    const aad = associatedData(context);
    const directory = session.contract("KeeperDirectory").address;
    const ask: AskKeeper = async (keeper, x, wanted) => {
      const request = { patient: pointer.patient, index: Number(pointer.index), reader, keeper, issuedAt: Number(now) };
      const signed = signing.then(() => {
        if (!wanted()) throw new Refusal("not-asked", "the key was found before this keeper was asked", 0);
        return signKeyRequest(request, session.config.chainId, directory, session.signTypedData);
      });
      signing = signed.catch(() => undefined);
      const body = await signed;
      const open = (wrap: Uint8Array) => openShare(wrap, pair, releaseInfo(aad, reader, keeper, x), `the share of record ${pointer.index} from ${keeper}`);
      // The portal's proxy is this page's own origin: never a private address to refuse.
      const proxy = new URL(`/keepers/${keeper}`, base).toString();
      return askKeeper(proxy, body, x, open, { allowPrivate: true, fetch: send, timeoutMs: KEEPER_TIMEOUT_MS });
    };
    return releasedKey(escrow, keepers, ask, (key) => opensRecord(blob, key, context));
  };
}
