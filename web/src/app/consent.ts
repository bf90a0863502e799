// Consent changes from the portal: each one is signed in the wallet (EIP-712, the document the
// CLI's --sign-only prints) and handed to the deployment's relayer, which pays the gas; without
// a relayer, or by choice, the patient sends the plain transaction instead.
import type { Address, Hex, TransactionReceipt } from "viem";
import {
  type ConsentChange,
  consentTypedData,
  signConsent,
  signedConsentJson,
} from "../formats/consent";
import { type Session, UserFacingError } from "./session";

const DEADLINE = 3600n; // seconds a signature stays relayable: long enough to relay, short enough to forget

export interface Sent {
  transactionHash: Hex;
  relayed: boolean;
}

/** The relationship's nonce the next signature must carry (grantOf's nonce). */
async function nonceOf(session: Session, patient: Address, counterpart: Address): Promise<bigint> {
  const grant = await session.read<{ nonce: bigint }>("ConsentManager", "grantOf", [patient, counterpart]);
  return grant.nonce;
}

/** Signs `change` in the wallet and has the relayer send it; waits for it to land. */
export async function signAndRelay(session: Session, change: ConsentChange, counterpart: Address): Promise<Sent> {
  if (!session.config.relayer) throw new UserFacingError("this portal has no relayer: send the change as a transaction");
  const nonce = await nonceOf(session, change.message.patient, counterpart);
  const deadline = (await session.now()) + DEADLINE;
  const typedData = consentTypedData(
    change,
    { chainId: session.config.chainId, verifyingContract: session.contract("ConsentManager").address },
    nonce,
    deadline,
  );
  const signed = await signConsent(typedData, session.signTypedData);
  const answer = await fetch("/relay/v1/consent", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: signedConsentJson(signed),
  });
  const reply = (await answer.json().catch(() => ({}))) as { transactionHash?: Hex; message?: string; error?: string };
  if (!answer.ok || !reply.transactionHash) {
    const why = reply.message ?? reply.error ?? `HTTP ${answer.status}`;
    throw new UserFacingError(`The relayer did not send your signed change: ${why}. Nothing was changed.`);
  }
  await session.chain.waitForTransactionReceipt({ hash: reply.transactionHash, pollingInterval: 250 });
  return { transactionHash: reply.transactionHash, relayed: true };
}

/** The same change as the patient's own transaction. */
export async function sendChange(session: Session, change: ConsentChange): Promise<Sent> {
  const m = change.message as Record<string, unknown>;
  let receipt: TransactionReceipt;
  switch (change.action) {
    case "Grant":
      receipt = await session.transact("ConsentManager", "grant", [
        m.grantee, m.scopes, m.purpose, m.validFrom, m.validUntil, m.keysCid,
      ]); // prettier-ignore
      break;
    case "Revoke":
      receipt = await session.transact("ConsentManager", "revoke", [m.grantee]);
      break;
    default:
      throw new UserFacingError(`${change.action} is sent by signature only from the portal`);
  }
  return { transactionHash: receipt.transactionHash, relayed: false };
}
