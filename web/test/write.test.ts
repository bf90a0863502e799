// app/write.ts without a chain: a new record's ciphertext and key bundle, held to the formats
// (the bundle parses back, each reader's wrap and any t keepers' shares give the key back, the
// ciphertext opens to the envelope), and the refusals for unusable keys.
import { type Address, getAddress } from "viem";
import { describe, expect, it } from "vitest";
import { fromUtf8, utf8 } from "../src/formats/bytes";
import { unpackEnvelope, packEnvelope } from "../src/formats/envelope";
import { escrowInfo, generateKeyPair, openShare, UnusableKeyError, unwrapKey } from "../src/formats/hpke";
import { parseKeyBundle, wrapsFor } from "../src/formats/keybundle";
import { associatedData, openRecord, type RecordContext } from "../src/formats/record";
import { combineKey } from "../src/formats/shamir";
import { UserFacingError } from "../src/app/session";
import { type Recipients, sealNewRecord } from "../src/app/write";
import { categoryFor } from "../src/views/provider";
import { studyId } from "../src/views/requests";

const address = (n: number) => getAddress(`0x${n.toString(16).padStart(40, "0")}`);
const [patient, author, grantee, broken, registry] = [0xa11ce, 0xd0c, 0x5e5, 0xbad, 0x4e9].map(address) as Address[];
const keepers = [0x101, 0x102, 0x103].map(address) as Address[];
const context: RecordContext = { chainId: 31337, registry: registry!, patient: patient!, author: author!, seq: 4n };
const pairs = new Map([patient, author, grantee, ...keepers].map((a) => [a!, generateKeyPair("X25519")]));
const pub = (a: Address) => pairs.get(a)!.publicKey;

function recipients(over: Partial<Recipients> = {}): Recipients {
  return {
    readers: [
      { address: patient!, key: pub(patient!) },
      { address: author!, key: pub(author!) },
      { address: broken!, key: new UnusableKeyError("the encryption public key is empty") },
      { address: grantee!, key: pub(grantee!) },
    ],
    escrow: { threshold: 2, keepers: keepers.map((k) => ({ address: k, key: pub(k) })) },
    skipped: new Map([[address(0x104), "keeper left out of the key escrow: no key"]]),
    ...over,
  };
}

describe("sealNewRecord", () => {
  const body = utf8('{"resourceType":"Observation"}');
  const plaintext = packEnvelope(body, "application/fhir+json", "obs.json");

  it("writes a bundle that parses back and unwraps for every usable reader, in order", async () => {
    const sealed = await sealNewRecord(context, plaintext, recipients(), "X25519");
    expect(sealed.readers).toEqual([patient, author, grantee]);
    expect([...sealed.skipped.keys()]).toEqual([broken, address(0x104)]);
    const bundle = parseKeyBundle(sealed.bundleBytes, patient!.toLowerCase());
    const doc = JSON.parse(fromUtf8(sealed.bundleBytes)) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(["format", "chainId", "registry", "patient", "suite", "wraps", "escrow"]);
    expect(doc).toMatchObject({ format: "medvault/key-bundle/v2", chainId: 31337, registry, patient, suite: "X25519" });
    expect(fromUtf8(sealed.bundleBytes)).not.toMatch(/\s/);
    const aad = associatedData(context);
    for (const reader of [patient!, author!, grantee!]) {
      const [wrap, ...more] = wrapsFor(bundle, reader, author!, 4n);
      expect(more).toEqual([]);
      expect(await unwrapKey(wrap!, pairs.get(reader)!, aad, reader)).toEqual(sealed.key);
    }
    const opened = unpackEnvelope(await openRecord(sealed.blob, sealed.key, context));
    expect(opened).toEqual({ contentType: "application/fhir+json", name: "obs.json", body });
  });

  it("escrows the key so that any threshold of the keepers recombine it", async () => {
    const sealed = await sealNewRecord(context, plaintext, recipients(), "X25519");
    const { escrow } = parseKeyBundle(sealed.bundleBytes, patient!);
    expect(escrow?.threshold).toBe(2);
    expect(escrow?.shares.map((s) => [s.keeper, s.x])).toEqual(keepers.map((k, i) => [k, i + 1]));
    const aad = associatedData(context);
    const shares = await Promise.all(
      escrow!.shares.map(async (s) => ({ x: s.x, share: await openShare(s.wrap, pairs.get(s.keeper as Address)!, escrowInfo(aad, s.keeper as Address), "share") })),
    );
    for (const pick of [[0, 1], [0, 2], [1, 2]]) expect(combineKey(pick.map((i) => shares[i]!))).toEqual(sealed.key);
    expect(combineKey([shares[0]!])).not.toEqual(sealed.key);
  });

  it("writes no escrow when the patient has no keepers", async () => {
    const sealed = await sealNewRecord(context, plaintext, recipients({ escrow: undefined, skipped: new Map() }), "X25519");
    expect(Object.keys(JSON.parse(fromUtf8(sealed.bundleBytes)) as object)).not.toContain("escrow");
    expect(parseKeyBundle(sealed.bundleBytes, patient!).escrow).toBeUndefined();
  });

  it("refuses to write when the patient's or the author's key cannot be used", async () => {
    for (const whom of [patient!, author!]) {
      const readers = recipients().readers.map((r) => (r.address === whom ? { ...r, key: new UnusableKeyError("low-order point") } : r));
      const sealing = sealNewRecord(context, plaintext, recipients({ readers }), "X25519");
      await expect(sealing).rejects.toThrow(UserFacingError);
      await expect(sealing).rejects.toThrow(whom === patient ? /the patient .* cannot be used \(low-order point\)/ : /the author/);
    }
  });

  it("uses a fresh key each time", async () => {
    const [a, b] = await Promise.all([0, 1].map(() => sealNewRecord(context, plaintext, recipients(), "X25519")));
    expect(a!.key).not.toEqual(b!.key);
  });
});

describe("what the provider and researcher views send", () => {
  it("takes a FHIR resource's category from its type, as the CLI does", () => {
    expect(categoryFor({ resourceType: "Observation" })).toBe("laboratory");
    expect(categoryFor({ resourceType: "Observation", category: [{ coding: [{ code: "imaging" }] }] })).toBe("imaging");
    expect(categoryFor({ resourceType: "DiagnosticReport", category: { coding: [{ code: "RAD" }] } })).toBe("imaging");
    expect(categoryFor({ resourceType: "Immunization" })).toBe("immunizations");
    expect(categoryFor({ resourceType: "Patient" })).toBe("notes");
    expect(categoryFor({ resourceType: "constructor" })).toBe("notes");
  });

  it("makes study ids as Python's study_id does", () => {
    expect(studyId("study-1")).toBe(`0x${"73747564792d31".padEnd(64, "0")}`);
    expect(studyId(`0x${"AB".repeat(32)}`)).toBe(`0x${"ab".repeat(32)}`);
    expect(studyId("é".repeat(16))).toMatch(/^0x(c3a9){16}$/);
    expect(() => studyId("")).toThrow(UserFacingError);
    expect(() => studyId("x".repeat(33))).toThrow(/1 to 32 bytes/);
  });
});
