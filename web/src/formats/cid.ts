// CIDs (docs/FORMATS.md, "CIDs"; Python: medvault.cids): parsed and checked, converted between
// text and the binary form the chain stores, and computed offline as Kubo's `ipfs add
// --cid-version=1 --raw-leaves --hash=sha2-256 --chunker=size-262144` makes them.

import { bases } from "multiformats/basics";
import { base58btc } from "multiformats/bases/base58";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { bytesToHex } from "viem";
import { concatBytes, equalBytes } from "./bytes";

/** Not a CID, or not one medvault takes; `reason` says why (as the Python InvalidCidError does). */
export class InvalidCidError extends Error {
  override name = "InvalidCidError";
  constructor(
    readonly value: string | Uint8Array,
    readonly reason: string,
  ) {
    super(`not a valid CID: ${typeof value === "string" ? JSON.stringify(value) : bytesToHex(value)} (${reason})`);
  }
}

const SHA2_256 = 0x12;
const RAW = 0x55;
const DAG_PB = 0x70;
// The binary CIDs the contracts take as pointers (contracts/libraries/Cids.sol): CIDv1, raw or
// dag-pb, a 32-byte sha2-256 digest.
export const POINTER_LENGTH = 36;
const POINTER_PREFIXES = [Uint8Array.of(1, RAW, SHA2_256, 32), Uint8Array.of(1, DAG_PB, SHA2_256, 32)];
const CHUNK = 262144;
const MAX_LINKS = 174; // Kubo's balanced layout: children per node

const MULTIBASES = Object.values(bases);

/** Any CID multiformats reads (text in any multibase, CIDv0 as bare base58btc, or binary), sha2-256 only. */
export function parseCid(value: string | Uint8Array): CID {
  let cid: CID;
  try {
    cid = typeof value === "string" ? fromText(value) : fromBinary(value);
  } catch (error) {
    throw new InvalidCidError(value, error instanceof Error ? error.message : String(error));
  }
  if (cid.multihash.code !== SHA2_256) {
    const code = cid.multihash.code.toString(16);
    throw new InvalidCidError(value, `hash function 0x${code} is not supported, only sha2-256`);
  }
  return cid;
}

function fromText(text: string): CID {
  if (text.startsWith("Q")) {
    const cid = fromBinary(base58btc.baseDecode(text));
    if (cid.version !== 0) throw new Error("a bare base58btc CID is a CIDv0");
    return cid;
  }
  const base = MULTIBASES.find((b) => text.startsWith(b.prefix));
  if (base === undefined) throw new Error("no known multibase code is a prefix of the given string");
  const cid = fromBinary(base.decoder.decode(text));
  if (cid.version === 0) throw new Error("CIDv0 may not be multibase encoded");
  return cid;
}

function fromBinary(bytes: Uint8Array): CID {
  const cid = CID.decode(bytes);
  // multiformats reads non-minimal varints, and any version byte 0 as CIDv0; the Python
  // reader refuses both, so only the bytes that encoding the CID gives back are one.
  if (!equalBytes(cid.bytes, bytes)) throw new Error("not the canonical encoding of a CID");
  return cid;
}

/** The binary form stored on chain; InvalidCidError for a CID the contracts would refuse. */
export function cidToBytes(cid: string | Uint8Array): Uint8Array {
  const parsed = parseCid(cid);
  const binary = parsed.bytes;
  if (binary.length !== POINTER_LENGTH || !POINTER_PREFIXES.some((p) => equalBytes(binary.subarray(0, 4), p))) {
    throw new InvalidCidError(
      cid,
      `CIDv${parsed.version} codec 0x${parsed.code.toString(16)} with a ${parsed.multihash.size}-byte digest; ` +
        "the contracts accept only CIDv1, raw or dag-pb, with a 32-byte sha2-256 digest",
    );
  }
  return binary.slice();
}

/** The text of a binary CID (base32 "b…" for CIDv1, as pointers are; base58btc for a CIDv0). */
export function cidFromBytes(binary: Uint8Array): string {
  return parseCid(binary).toString();
}

// -- computing: one raw block up to 256 KiB (0 bytes too), else 256 KiB raw leaves under
// dag-pb UnixFS File nodes in Kubo's balanced layout (go-unixfs importer/balanced).

/** A block of the DAG: its CID, the bytes of its subtree in blocks (Tsize) and in file data. */
interface DagNode {
  cid: CID;
  treeSize: number;
  fileSize: number;
}

/** The CID `ipfs add` gives `data`, computed offline (base32 text). */
export async function computeCid(data: Uint8Array): Promise<string> {
  const chunks = Math.max(1, Math.ceil(data.length / CHUNK));
  let next = 0;
  const leaf = async (): Promise<DagNode> => {
    const chunk = data.subarray(next * CHUNK, ++next * CHUNK);
    return { cid: CID.createV1(RAW, await sha256.digest(chunk)), treeSize: chunk.length, fileSize: chunk.length };
  };
  // A node of `depth` (1: over leaves) holding `children`, filled up to MAX_LINKS while data lasts.
  const fill = async (children: DagNode[], depth: number): Promise<DagNode> => {
    while (children.length < MAX_LINKS && next < chunks) {
      children.push(depth === 1 ? await leaf() : await fill([], depth - 1));
    }
    return branch(children);
  };
  // The first chunk is the root while it is the only one; each time the tree is full it becomes
  // the first child of a root one level deeper.
  let root = await leaf();
  for (let depth = 1; next < chunks; depth++) root = await fill([root], depth);
  return root.cid.toString();
}

async function branch(children: DagNode[]): Promise<DagNode> {
  const fileSize = children.reduce((n, c) => n + c.fileSize, 0);
  // PBNode: the Links (field 2: Hash, Name "" present, Tsize) before Data (field 1), as dag-pb
  // orders them; Data is UnixFS Type File, filesize and one blocksizes per child.
  const links = children.map((c) =>
    field(2, concatBytes(field(1, c.cid.bytes), field(2, new Uint8Array()), varintField(3, c.treeSize))),
  );
  const blockSizes = children.map((c) => varintField(4, c.fileSize));
  const unixfs = concatBytes(varintField(1, 2), varintField(3, fileSize), ...blockSizes);
  const node = concatBytes(...links, field(1, unixfs));
  const treeSize = children.reduce((n, c) => n + c.treeSize, node.length);
  return { cid: CID.createV1(DAG_PB, await sha256.digest(node)), treeSize, fileSize };
}

// Protobuf: a key is field << 3 | wire type (0 varint, 2 length-delimited); varints are base 128, low bits first.
const field = (number: number, payload: Uint8Array) =>
  concatBytes(varint((number << 3) | 2), varint(payload.length), payload);
const varintField = (number: number, value: number) => concatBytes(varint(number << 3), varint(value));

function varint(value: number): Uint8Array {
  const out: number[] = [];
  for (; value >= 0x80; value = Math.floor(value / 0x80)) out.push((value % 0x80) | 0x80);
  out.push(value);
  return Uint8Array.from(out);
}
