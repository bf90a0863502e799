// Key bundles (docs/FORMATS.md, "Key bundle"; Python: medvault.formats.keybundle): who can unwrap
// a record's key, as one compact JSON document in IPFS. The HPKE seals inside are opened by the
// caller's function (hpke.ts); this module reads and writes the document only.
//
// JSON integers that are chain values (chainId, seq, a re-escrow's record index) are bigints, exact
// as the Python reader holds them; x and threshold, small counts, are numbers.

import { asciiJson, DecryptionError, fromBase64, fromUtf8, IntegrityError, parseJson, toBase64, utf8 } from "./bytes";

export const FORMAT = "medvault/key-bundle/v2";

/** The key of record `seq` by `author`, HPKE-wrapped for `reader`. */
export interface Wrap {
  author: string;
  seq: bigint;
  reader: string;
  wrap: Uint8Array;
}

/** Share `x` of a record key, HPKE-sealed to `keeper`. */
export interface EscrowShare {
  keeper: string;
  x: number;
  wrap: Uint8Array;
}

export interface Escrow {
  threshold: number;
  shares: EscrowShare[];
}

export interface KeyBundle {
  chainId: bigint;
  registry: string;
  patient: string;
  suite: string;
  wraps: Wrap[];
  escrow?: Escrow;
  /** A re-escrow bundle's entries: each existing record's key (by its index) split for the new keepers. */
  escrows?: { index: bigint; escrow: Escrow }[];
}

/** The bundle's bytes: compact ASCII JSON, keys in the documented order, `escrow` and
 * `escrows` only when there are some. */
export function serialiseKeyBundle(bundle: KeyBundle): Uint8Array {
  const document: Record<string, unknown> = {
    format: FORMAT,
    chainId: bundle.chainId,
    registry: bundle.registry,
    patient: bundle.patient,
    suite: bundle.suite,
    wraps: bundle.wraps.map((w) => ({ author: w.author, seq: w.seq, reader: w.reader, wrap: toBase64(w.wrap) })),
  };
  if (bundle.escrow !== undefined) document.escrow = escrowDocument(bundle.escrow);
  if (bundle.escrows?.length) {
    document.escrows = bundle.escrows.map((e) => ({ index: e.index, ...escrowDocument(e.escrow) }));
  }
  return utf8(emit(document));
}

const escrowDocument = (escrow: Escrow) => ({
  threshold: escrow.threshold,
  shares: escrow.shares.map((s) => ({ keeper: s.keeper, x: s.x, wrap: toBase64(s.wrap) })),
});

// asciiJson of a document whose integers may be bigints, which JSON.stringify refuses.
function emit(value: unknown): string {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return `[${value.map(emit).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    return `{${Object.entries(value).map(([k, v]) => `${asciiJson(k)}:${emit(v)}`).join(",")}}`;
  }
  return asciiJson(value);
}

/**
 * The bundle in `data` if it is a medvault key bundle for `patient` (compared without regard to
 * case); `name` (its CID, say) is what the IntegrityError calls it. The document's shape is
 * required; within it a malformed wrap or escrow share is left out, and an unusable escrow reads
 * as none, so one bad item cannot keep the other readers from theirs.
 */
export function parseKeyBundle(data: Uint8Array, patient: string, name = "key bundle"): KeyBundle {
  let doc: unknown;
  try {
    doc = parseJson(fromUtf8(data));
  } catch {
    doc = undefined;
  }
  if (
    !isObject(doc) ||
    doc.format !== FORMAT ||
    typeof doc.patient !== "string" ||
    doc.patient.toLowerCase() !== patient.toLowerCase() ||
    typeof doc.chainId !== "bigint" ||
    typeof doc.registry !== "string" ||
    typeof doc.suite !== "string" ||
    !Array.isArray(doc.wraps)
  ) {
    throw new IntegrityError(`${name} is not a medvault key bundle for ${patient}`);
  }
  const wraps = doc.wraps.flatMap((w): Wrap[] => {
    const wrap = isObject(w) ? base64(w.wrap) : undefined;
    return wrap && typeof w.author === "string" && typeof w.seq === "bigint" && typeof w.reader === "string"
      ? [{ author: w.author, seq: w.seq, reader: w.reader, wrap }]
      : [];
  });
  const escrows = (Array.isArray(doc.escrows) ? doc.escrows : []).flatMap((e) => {
    const escrow = isObject(e) && typeof e.index === "bigint" ? parseEscrow(e) : undefined;
    return escrow ? [{ index: e.index as bigint, escrow }] : [];
  });
  const bundle: KeyBundle = { chainId: doc.chainId, registry: doc.registry, patient, suite: doc.suite, wraps };
  const escrow = parseEscrow(doc.escrow);
  if (escrow) bundle.escrow = escrow;
  if (escrows.length) bundle.escrows = escrows;
  return bundle;
}

function parseEscrow(doc: unknown): Escrow | undefined {
  if (!isObject(doc) || typeof doc.threshold !== "bigint" || doc.threshold < 1n) return undefined;
  const shares = (Array.isArray(doc.shares) ? doc.shares : []).flatMap((s): EscrowShare[] => {
    const wrap = isObject(s) ? base64(s.wrap) : undefined;
    return wrap && typeof s.keeper === "string" && typeof s.x === "bigint"
      ? [{ keeper: s.keeper, x: Number(s.x), wrap }]
      : [];
  });
  return { threshold: Number(doc.threshold), shares };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function base64(text: unknown): Uint8Array | undefined {
  try {
    return typeof text === "string" ? fromBase64(text) : undefined;
  } catch {
    return undefined;
  }
}

// -- queries (addresses compared without regard to case)

/** Every wrap for `reader` of the key of record `seq` by `author`, in bundle order. */
export function wrapsFor(bundle: KeyBundle, reader: string, author: string, seq: bigint | number): Uint8Array[] {
  const [r, a, s] = [reader.toLowerCase(), author.toLowerCase(), BigInt(seq)];
  return bundle.wraps
    .filter((w) => w.seq === s && w.author.toLowerCase() === a && w.reader.toLowerCase() === r)
    .map((w) => w.wrap);
}

/**
 * The record key from the first of `reader`'s wraps of that record that `unwrap` (an HPKE open
 * with the reader's key and the record's wrap info) opens: a reader tries them in order, as a
 * bundle may wrap the key for several of its key epochs. Undefined if none opens.
 */
export async function unwrapFor(
  bundle: KeyBundle,
  reader: string,
  author: string,
  seq: bigint | number,
  unwrap: (wrap: Uint8Array) => Promise<Uint8Array>,
): Promise<Uint8Array | undefined> {
  for (const wrap of wrapsFor(bundle, reader, author, seq)) {
    try {
      return await unwrap(wrap);
    } catch (error) {
      if (!(error instanceof DecryptionError)) throw error;
    }
  }
  return undefined;
}

export function shareOf(escrow: Escrow, keeper: string): EscrowShare | undefined {
  return escrow.shares.find((s) => s.keeper.toLowerCase() === keeper.toLowerCase());
}

/** The re-escrow of record `index`'s key in this bundle, if it has one. */
export function escrowOf(bundle: KeyBundle, index: bigint | number): Escrow | undefined {
  return bundle.escrows?.find((e) => e.index === BigInt(index))?.escrow;
}

/**
 * Record `index`'s escrow as keepers serve it and readers ask for it: the keeper set's
 * re-escrow bundle's entry if it has one, else the record's own bundle's (`own` is read only then).
 */
export async function servedEscrow(
  index: bigint | number,
  reescrow: KeyBundle | undefined,
  own: () => KeyBundle | Promise<KeyBundle>,
): Promise<Escrow | undefined> {
  return (reescrow && escrowOf(reescrow, index)) ?? (await own()).escrow;
}
