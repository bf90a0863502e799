import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DecryptionError, fromBase64, IntegrityError, toBase64, utf8 } from "../src/formats/bytes";
import {
  escrowOf,
  parseKeyBundle,
  serialiseKeyBundle,
  servedEscrow,
  shareOf,
  unwrapFor,
  wrapsFor,
} from "../src/formats/keybundle";

interface Case {
  why?: string;
  patient: string;
  json: string;
  wraps?: { author: string; seq: number; reader: string; wrap: string }[];
}
const vectors = JSON.parse(readFileSync(new URL("../../docs/vectors/keybundle.json", import.meta.url), "utf8")) as {
  cases: Case[];
  mustFail: Case[];
  lenient: Case[];
};
const wrapsOf = (bundle: ReturnType<typeof parseKeyBundle>) =>
  bundle.wraps.map((w) => ({ author: w.author, seq: Number(w.seq), reader: w.reader, wrap: toBase64(w.wrap) }));

describe("key bundle (keybundle.json)", () => {
  it.each(vectors.cases.map((c, i) => [i, c] as const))("case %i parses and serialises to the same bytes", (_, c) => {
    const bundle = parseKeyBundle(utf8(c.json), c.patient);
    type Share = { keeper: string; x: number; wrap: string };
    const doc = JSON.parse(c.json) as { chainId: number; wraps: Case["wraps"]; escrow?: { threshold: number; shares: Share[] } };
    expect(serialiseKeyBundle(bundle)).toEqual(utf8(c.json));
    expect(bundle.chainId).toBe(BigInt(doc.chainId));
    expect(wrapsOf(bundle)).toEqual(doc.wraps);
    expect(bundle.escrow?.threshold).toBe(doc.escrow?.threshold);
    expect(bundle.escrow?.shares.map((s) => ({ ...s, wrap: toBase64(s.wrap) }))).toEqual(doc.escrow?.shares);
  });

  it.each(vectors.mustFail)("refuses: $why", (c) => {
    expect(() => parseKeyBundle(utf8(c.json), c.patient)).toThrow(IntegrityError);
  });

  it.each(vectors.lenient)("reads leniently: $why", (c) => {
    expect(wrapsOf(parseKeyBundle(utf8(c.json), c.patient))).toEqual(c.wraps);
  });
});

describe("key bundle queries", () => {
  const bundle = parseKeyBundle(utf8(vectors.cases[0]!.json), vectors.cases[0]!.patient);
  const [reader, author] = ["0xeD95c093444A29736770cc1a09BAd5532d1575e6", "0xf86386E623b2570ef5E837dAaFD1f16A24641B14"];

  it("finds a reader's wraps of a record without regard to address case", () => {
    expect(wrapsFor(bundle, reader.toLowerCase(), author.toUpperCase().replace("0X", "0x"), 3n)).toEqual([bundle.wraps[0]!.wrap]);
    expect(wrapsFor(bundle, reader, author, 4)).toEqual([]);
    expect(shareOf(bundle.escrow!, "0xeb5bfc5c5ab0637e3680f065ec22e03e23f497d9")?.x).toBe(2);
  });

  it("unwraps with the first wrap that opens, trying them in order", async () => {
    const twice = { ...bundle, wraps: [bundle.wraps[0]!, { ...bundle.wraps[0]!, wrap: Uint8Array.of(7) }] };
    const unwrap = async (wrap: Uint8Array) => {
      if (wrap.length !== 1) throw new DecryptionError("not this one");
      return wrap;
    };
    expect(await unwrapFor(twice, reader, author, 3n, unwrap)).toEqual(Uint8Array.of(7));
    expect(await unwrapFor(bundle, reader, author, 3n, unwrap)).toBeUndefined();
    await expect(unwrapFor(bundle, reader, author, 3n, () => Promise.reject(new TypeError("bug")))).rejects.toThrow(TypeError);
  });

  it("writes and reads a re-escrow bundle; its entry is the escrow served", async () => {
    const escrow = { threshold: 2, shares: [{ keeper: reader, x: 1, wrap: fromBase64("AAEC") }] };
    const reescrow = { ...bundle, wraps: [], escrow: undefined, escrows: [{ index: 0n, escrow }] };
    const bytes = serialiseKeyBundle(reescrow);
    expect(new TextDecoder().decode(bytes)).toContain(`"wraps":[],"escrows":[{"index":0,"threshold":2,"shares":[{"keeper":"${reader}","x":1,"wrap":"AAEC"}]}]}`);
    const read = parseKeyBundle(bytes, bundle.patient);
    expect(escrowOf(read, 0)).toEqual(escrow);
    expect(await servedEscrow(0n, read, () => bundle)).toEqual(escrow);
    expect(await servedEscrow(1n, read, () => bundle)).toBe(bundle.escrow);
    expect(await servedEscrow(1n, undefined, async () => bundle)).toBe(bundle.escrow);
  });

  it("reads an escrow with an unusable threshold as none, and keeps integers exact", () => {
    for (const threshold of ["0", "-1", "2.0", '"2"', "null"]) {
      const text = vectors.cases[0]!.json.replace('"threshold":2', `"threshold":${threshold}`);
      expect(parseKeyBundle(utf8(text), bundle.patient).escrow).toBeUndefined();
    }
    const big = vectors.cases[1]!.json.replace('"chainId":31337', '"chainId":18446744073709551617');
    expect(parseKeyBundle(utf8(big), bundle.patient).chainId).toBe(2n ** 64n + 1n);
    expect(serialiseKeyBundle(parseKeyBundle(utf8(big), bundle.patient))).toEqual(utf8(big));
  });
});
