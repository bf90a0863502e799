// Handing a grantee the keys of records that exist already: each key the patient's own wraps
// open is wrapped again for the grantee's published key, in one bundle named by the grant
// (or shareKeys). Python: client/consent.py _share_keys. Only the patient can: a delegate holds
// no record key, and the grantee then reads through the keepers.
import { type Address, bytesToHex, type Hex, hexToBytes, keccak256 } from "viem";
import { cidToBytes } from "../formats/cid";
import { parsePublicKey, wrapKey } from "../formats/hpke";
import { serialiseKeyBundle, type Wrap } from "../formats/keybundle";
import { associatedData } from "../formats/record";
import type { Keys } from "./keys";
import { contextOf, ownRecordKey, type RecordPointer, upload } from "./records";
import { type Session, UserFacingError } from "./session";

export interface Shared {
  keysCid: Hex; // "0x" when there was nothing to share
  shared: bigint[];
  skipped: Map<bigint, string>;
}

/** `account`'s published key: the newest ParticipantRegistered key that hashes to the registry's
 * stored hash (a lying RPC endpoint cannot swap it); undefined if none was published. */
export async function publishedKey(session: Session, account: Address): Promise<Uint8Array | undefined> {
  const [expected, events] = await Promise.all([
    session.read<Hex>("ParticipantRegistry", "encryptionKeyHash", [account]),
    session.chain.getContractEvents({
      ...session.contract("ParticipantRegistry"),
      eventName: "ParticipantRegistered",
      args: { account },
      fromBlock: BigInt(session.config.deploymentBlock),
    }),
  ]);
  for (const event of [...events].reverse()) {
    const key = (event.args as { encryptionKey: Hex }).encryptionKey;
    if (keccak256(key) === expected) return hexToBytes(key);
  }
  return undefined;
}

/** `account`'s published key, if this deployment can wrap for it; a refusal in words if not. */
export async function usableKey(session: Session, account: Address, who: string): Promise<Uint8Array> {
  const key = await publishedKey(session, account);
  if (!key) throw new UserFacingError(`${who} has not published an encryption key: no record key can be wrapped for it`);
  let suite: string;
  try {
    suite = parsePublicKey(key);
  } catch (error) {
    throw new UserFacingError(`the encryption key ${who} published cannot be used: ${(error as Error).message}`);
  }
  if (suite !== session.config.keySuite) {
    throw new UserFacingError(`${who} published a ${suite} key; this deployment wraps for ${session.config.keySuite} keys`);
  }
  return key;
}

export async function shareKeys(
  session: Session,
  keys: Keys,
  grantee: Address,
  pointers: readonly RecordPointer[],
): Promise<Shared> {
  const skipped = new Map<bigint, string>();
  if (pointers.length === 0) return { keysCid: "0x", shared: [], skipped };
  const recipient = await usableKey(session, grantee, session.name(grantee));
  const pairs = keys.pairs(session);
  const wraps: Wrap[] = [];
  for (const pointer of pointers) {
    try {
      const key = await ownRecordKey(session, pointer, session.account, pairs);
      if (!key) throw new Error("none of your keys opens its wraps");
      const wrap = await wrapKey(key, recipient, associatedData(contextOf(session, pointer)), grantee);
      wraps.push({ author: pointer.author, seq: pointer.seq, reader: grantee, wrap });
    } catch (error) {
      skipped.set(pointer.index, (error as Error).message);
    }
  }
  if (wraps.length === 0) return { keysCid: "0x", shared: [], skipped };
  const bundle = serialiseKeyBundle({
    chainId: BigInt(session.config.chainId),
    registry: session.contract("RecordRegistry").address,
    patient: session.account,
    suite: session.config.keySuite,
    wraps,
  });
  const cid = await upload(bundle, "the shared key bundle");
  const shared = pointers.map((p) => p.index).filter((i) => !skipped.has(i));
  return { keysCid: bytesToHex(cidToBytes(cid)), shared, skipped };
}
