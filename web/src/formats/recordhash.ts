// The record pointer's content hash and the hash that chains a patient's log (docs/FORMATS.md,
// "Record pointer and record hash"; Python: medvault.formats.recordhash; contract:
// RecordRegistry._hashRecord). The chain keeps only the newest hash; readers rebuild the chain
// from RecordAdded events and compare it with logOf(patient).head.

import { type Address, bytesToHex, encodeAbiParameters, type Hex, keccak256 } from "viem";

/** The `previous` hash of a patient's first record. */
export const GENESIS: Hex = `0x${"00".repeat(32)}`;

/** One record as RecordAdded emits it (viem's decoded args fit), with the hash before it. */
export interface RecordLink {
  previous: Hex | Uint8Array;
  patient: Address;
  index: bigint | number;
  author: Address;
  seq: bigint | number;
  category: number;
  timestamp: bigint | number;
  contentHash: Hex | Uint8Array;
  /** Binary CIDs, as on chain. */
  cid: Hex | Uint8Array;
  keysCid: Hex | Uint8Array;
}

const TYPES = [
  "bytes32", "address", "uint64", "address", "uint64", "uint8", "uint64", "bytes32", "bytes32", "bytes32",
].map((type) => ({ type }));

/**
 * `keccak256(abi.encode(previous, patient, index, author, seq, category, timestamp, contentHash,
 * keccak256(cid), keccak256(keysCid)))`. viem's encoder refuses what eth_abi does (a value out of
 * its type's range, a bytes32 of another length) and also a mixed-case address whose EIP-55
 * checksum fails.
 */
export function recordHash(r: RecordLink): Hex {
  const hex = (value: Hex | Uint8Array): Hex => (typeof value === "string" ? value : bytesToHex(value));
  return keccak256(
    encodeAbiParameters(TYPES, [
      hex(r.previous), r.patient, BigInt(r.index), r.author, BigInt(r.seq), r.category, BigInt(r.timestamp),
      hex(r.contentHash), keccak256(r.cid), keccak256(r.keysCid),
    ]),
  );
}

/** `contentHash` of a ciphertext blob: its SHA-256, which readers check before decrypting. */
export async function contentHash(blob: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", blob as Uint8Array<ArrayBuffer>));
}
