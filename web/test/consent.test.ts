import { readFileSync } from "node:fs";
import {
  type Address,
  bytesToHex,
  hashDomain,
  hashStruct,
  type Hex,
  keccak256,
  recoverTypedDataAddress,
  toBytes,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { parseJson, viemTypedData } from "../src/formats/bytes";
import {
  CONSENT_TYPES,
  type ConsentAction,
  type ConsentChange,
  ConsentError,
  type ConsentTypedData,
  consentAuthorization,
  consentDigest,
  consentTypedData,
  describeConsent,
  parseConsentTypedData,
  parseSignedConsent,
  recoverConsentSigner,
  signConsent,
  signedConsentJson,
  signedNonce,
} from "../src/formats/consent";

interface Case {
  primaryType: ConsentAction;
  typeString: string;
  typeHash: Hex;
  typedData: ConsentTypedData;
  domainSeparator: Hex;
  structHash: Hex;
  digest: Hex;
  signer: Address;
  signature: Hex;
  signedJson: string;
}
const text = readFileSync(new URL("../../docs/vectors/eip712.json", import.meta.url), "utf8");
const doc = JSON.parse(text) as {
  accounts: Record<"patient" | "delegate", { privateKey: Hex; address: Address }>;
  domainTypeString: string;
  cases: Case[];
  equivalentSignatures: { signatures: Hex[]; r: Hex; vs: Hex };
};
// The Authorization's nonce of a delegate's signature is above 2^53: read it exactly.
const exact = parseJson(text) as { cases: { authorization: Record<string, bigint | string> }[] };
const first = doc.cases[0]!;
const deployment = { chainId: 31337, verifyingContract: first.typedData.domain.verifyingContract };
const keyOf = (address: Address) =>
  Object.values(doc.accounts).find((a) => a.address === address)!.privateKey;
const typeString = (name: string, fields: readonly { name: string; type: string }[]) =>
  `${name}(${fields.map((f) => `${f.type} ${f.name}`).join(",")})`;

const cases = doc.cases.map((c, i) => [c.primaryType, c, i] as const);

describe("eip712.json", () => {
  it.each(cases)("%s: document, hashes, signature, signer", async (_, c, i) => {
    const { nonce, deadline, ...message } = c.typedData.message;
    const change = { action: c.primaryType, message } as unknown as ConsentChange;
    const built = consentTypedData(change, deployment, BigInt(nonce!), BigInt(deadline!));
    expect(built).toEqual(c.typedData);
    expect(JSON.stringify(built)).toBe(JSON.stringify(c.typedData)); // the same key order, as the CLI prints it

    expect(typeString(c.primaryType, CONSENT_TYPES[c.primaryType])).toBe(c.typeString);
    expect(keccak256(toBytes(c.typeString))).toBe(c.typeHash);
    expect(typeString("EIP712Domain", c.typedData.types.EIP712Domain!)).toBe(doc.domainTypeString);
    const viem = viemTypedData(built);
    expect(hashDomain({ domain: viem.domain!, types: viem.types })).toBe(c.domainSeparator);
    expect(hashStruct({ data: viem.message, primaryType: c.primaryType, types: viem.types })).toBe(c.structHash);
    expect(consentDigest(built)).toBe(c.digest);

    const account = privateKeyToAccount(keyOf(c.signer));
    const signed = await signConsent(built, (typedData) => account.signTypedData(typedData));
    expect(signed.signature).toBe(c.signature);
    expect(signedConsentJson(signed)).toBe(c.signedJson);
    expect(await recoverConsentSigner(signed)).toBe(c.signer);
    expect(await recoverTypedDataAddress({ ...viem, signature: c.signature })).toBe(c.signer);
    const authorization = consentAuthorization(signed);
    const expected = exact.cases[i]!.authorization;
    const integer = (name: string) => BigInt(expected[name]!);
    const integers = { nonce: integer("nonce"), deadline: integer("deadline"), chainId: integer("chainId") };
    expect(authorization).toEqual({ ...expected, ...integers });
  });

  it.each(cases)("%s: the CLI's files read back as written", async (_, c) => {
    const relayed = parseSignedConsent(c.signedJson, deployment);
    expect(relayed).toEqual({ typedData: c.typedData, signature: c.signature });
    expect(signedConsentJson(relayed)).toBe(c.signedJson);
    // what --unsigned prints, with the wallet's signature beside it
    const unsigned = JSON.stringify(c.typedData, null, 2);
    expect(parseConsentTypedData(unsigned, deployment)).toEqual(c.typedData);
    expect(parseSignedConsent(unsigned, deployment, c.signature)).toEqual(relayed);
    expect(await recoverConsentSigner(relayed)).toBe(c.signer);
  });

  it("binds a delegate's nonce to its appointment", () => {
    const revoke = doc.cases.find((c) => c.primaryType === "Revoke")!;
    expect(signedNonce(1n, 1n).toString()).toBe(revoke.typedData.message.nonce);
    expect(signedNonce(7n)).toBe(7n);
  });

  it.each(doc.equivalentSignatures.signatures)("the spelling %s packs to the same (r, vs)", async (signature) => {
    const signed = parseSignedConsent(JSON.stringify(first.typedData), deployment, signature);
    expect(signed.signature).toBe(signature); // kept as given, as the CLI keeps it
    const { r, vs } = consentAuthorization(signed);
    expect({ r, vs }).toEqual({ r: doc.equivalentSignatures.r, vs: doc.equivalentSignatures.vs });
    expect(await recoverConsentSigner(signed)).toBe(first.signer);
  });

  it("takes EIP-2098 compact signatures and signatures without 0x", async () => {
    const { r, vs } = doc.equivalentSignatures;
    for (const signature of [r + vs.slice(2), first.signature.slice(2)]) {
      const signed = parseSignedConsent(JSON.stringify(first.typedData), deployment, signature);
      expect(consentAuthorization(signed)).toMatchObject({ r, vs });
      expect(await recoverConsentSigner(signed)).toBe(first.signer);
    }
  });

  it("takes any wallet's spelling and writes medvault's", () => {
    const typedData = structuredClone(first.typedData);
    Object.assign(typedData.message, {
      patient: first.typedData.message.patient!.toString().toLowerCase(),
      grantee: first.typedData.message.grantee!.toString().toUpperCase().replace("0X", "0x"),
      scopes: "33",
      validFrom: "0x6553f100",
      keysCid: first.typedData.message.keysCid!.toString().toUpperCase().replace("0X", "0x"),
    });
    typedData.domain.chainId = "31337";
    typedData.domain.verifyingContract = typedData.domain.verifyingContract.toLowerCase() as Address;
    expect(parseConsentTypedData(JSON.stringify(typedData), deployment)).toEqual(first.typedData);
    const bigintChain = { ...deployment, chainId: 31337n };
    expect(parseConsentTypedData(JSON.stringify(first.typedData), bigintChain)).toEqual(first.typedData);
  });
});

describe("refusals", () => {
  const signed = JSON.parse(first.signedJson) as { typedData: ConsentTypedData; signature: Hex };
  /** first's signed file with `change` made to a copy; refused with a ConsentError matching `why`. */
  const refused = (why: RegExp, change: (d: { typedData: Record<string, any>; signature: unknown }) => void) => {
    const copy = structuredClone(signed) as unknown as { typedData: Record<string, any>; signature: unknown };
    change(copy);
    const file = JSON.stringify(copy);
    expect(() => parseSignedConsent(file, deployment)).toThrow(ConsentError);
    expect(() => parseSignedConsent(file, deployment)).toThrow(why);
  };

  it("refuses a document made for another deployment (phishing)", () => {
    refused(/is for chain 1, this deployment is chain 31337/, (d) => (d.typedData.domain.chainId = 1));
    const elsewhere = "0x1111111111111111111111111111111111111111";
    refused(/is for the ConsentManager at 0x1111111111111111111111111111111111111111/, (d) => {
      d.typedData.domain.verifyingContract = elsewhere;
    });
    expect(() => parseConsentTypedData(JSON.stringify(first.typedData), { ...deployment, chainId: 1 })).toThrow(
      /this Grant is for chain 31337, this deployment is chain 1/,
    );
    const other = { ...deployment, verifyingContract: elsewhere as Address };
    expect(() => parseSignedConsent(first.signedJson, other)).toThrow(/sign it again for this one/);
  });

  it("refuses what medvault did not make", () => {
    refused(/primaryType "Mail" is none of Grant/, (d) => (d.typedData.primaryType = "Mail"));
    refused(/lacks its types, domain or message/, (d) => delete d.typedData.message);
    refused(/lacks its types, domain or message/, (d) => (d.typedData.domain = []));
    refused(/the Grant type of this document is not medvault's/, (d) => (d.typedData.types.Grant[2].type = "uint16"));
    refused(/the Grant type of this document is not medvault's/, (d) => d.typedData.types.Grant.reverse());
    refused(/the Grant type of this document is not medvault's/, (d) => (d.typedData.types.Grant[0].extra = 1));
    refused(/the EIP712Domain type of this document is not medvault's/, (d) => d.typedData.types.EIP712Domain.pop());
    refused(/must be EIP712Domain and Grant alone, not EIP712Domain, Grant, Mail/, (d) => {
      d.typedData.types.Mail = [];
    });
    refused(/signed for "evil" version "1"/, (d) => (d.typedData.domain.name = "evil"));
    refused(/version "2", not "medvault ConsentManager" version "1"/, (d) => (d.typedData.domain.version = "2"));
    refused(/the domain of this Grant needs exactly name, version, chainId, verifyingContract/, (d) => {
      d.typedData.domain.salt = "0x" + "00".repeat(32);
    });
    refused(/the Grant of this Grant needs exactly patient, grantee/, (d) => delete d.typedData.message.keysCid);
    refused(/the Grant of this Grant needs exactly/, (d) => (d.typedData.message.note = "hi"));
  });

  it("refuses malformed values", () => {
    const patient = first.typedData.message.patient as string;
    const flipped = patient.replace(/[a-f]/, (c) => c.toUpperCase());
    refused(/fails its EIP-55 checksum/, (d) => (d.typedData.message.patient = flipped));
    refused(/is not an address/, (d) => (d.typedData.message.grantee = patient.slice(0, 41)));
    refused(/is not an address/, (d) => (d.typedData.message.grantee = 12));
    refused(/is not an address/, (d) => (d.typedData.domain.verifyingContract = "0x" + "g".repeat(40)));
    for (const value of [-1, 256, 1.5, "0X21", " 33", "-1", "", "3_3", true, null]) {
      refused(/scopes must be a whole number from 0 to 2\^8-1/, (d) => (d.typedData.message.scopes = value));
    }
    // JSON that JavaScript reads as 33 and Python as a float: refused, as Python refuses it
    for (const spelling of ["33.0", "3.3e1"]) {
      const file = first.signedJson.replace('"scopes": 33,', `"scopes": ${spelling},`);
      expect(() => parseSignedConsent(file, deployment)).toThrow(/scopes must be a whole number/);
    }
    refused(/validUntil must be a whole number from 0 to 2\^40-1/, (d) => (d.typedData.message.validUntil = 2 ** 40));
    refused(/chainId must be a whole number/, (d) => (d.typedData.domain.chainId = "thirty"));
    refused(/keysCid must be 0x and pairs of hex digits/, (d) => (d.typedData.message.keysCid = "0x123"));
    refused(/keysCid must be 0x and pairs of hex digits/, (d) => (d.typedData.message.keysCid = "0155"));
    const approve = doc.cases.find((c) => c.primaryType === "ApproveRequest")!;
    const bad = structuredClone(approve.typedData);
    bad.message.studyId = "0x1234";
    expect(() => parseSignedConsent(JSON.stringify(bad), deployment, approve.signature)).toThrow(
      /studyId must be 0x and pairs of hex digits \(32 bytes\)/,
    );
    const remove = doc.cases.find((c) => c.primaryType === "RemoveDelegate")!;
    const notBool = structuredClone(remove.typedData) as unknown as { message: Record<string, unknown> };
    notBool.message.keepGrants = "false";
    expect(() => parseSignedConsent(JSON.stringify(notBool), deployment, remove.signature)).toThrow(
      /keepGrants must be true or false/,
    );
  });

  it("refuses files that are not one JSON object, or name a key twice", () => {
    for (const [file, why] of [
      ["", /not JSON/],
      ["{", /not JSON/],
      ["[]", /it is not a JSON object/],
      ['{"typedData": 1, "signature": "0x"}', /typedData is not a JSON object/],
      [first.signedJson + "x", /not JSON/],
      [first.signedJson.replace('"scopes": 33,', '"scopes": 33, "scopes": 63,'), /names "scopes" twice/],
      ["\ufeff" + first.signedJson, /not JSON/],
    ] as const) {
      expect(() => parseSignedConsent(file, deployment)).toThrow(why);
    }
  });

  it("refuses a missing, doubled or impossible signature", () => {
    const bare = JSON.stringify(first.typedData);
    expect(() => parseSignedConsent(bare, deployment)).toThrow(/no signature/);
    const twice = () => parseSignedConsent(first.signedJson, deployment, first.signature);
    expect(twice).toThrow(/carries a signature already/);
    expect(() => parseConsentTypedData(first.signedJson, deployment)).toThrow(/signed already/);
    refused(/no signature/, (d) => (d.signature = null));
    refused(/is not hex/, (d) => (d.signature = 42));
    refused(/is not hex/, (d) => (d.signature = "0xzz"));
    refused(/an Ethereum signature has 65 bytes, this one 66/, (d) => (d.signature = first.signature + "00"));
    refused(/recovery id v=29 is neither 27\/28 nor 0\/1/, (d) => (d.signature = first.signature.slice(0, -2) + "1d"));
    const zero = "00".repeat(32);
    const n = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
    const curve = /r and s must be from 1 to the curve order/;
    refused(curve, (d) => (d.signature = `0x${zero}${first.signature.slice(66)}`));
    refused(curve, (d) => (d.signature = `${first.signature.slice(0, 66)}${n}1b`));
  });

  it("a signature of another document recovers to another account, or to none", async () => {
    const altered = structuredClone(signed);
    altered.typedData.message.scopes = 63;
    const other = parseSignedConsent(JSON.stringify(altered), deployment);
    expect(await recoverConsentSigner(other)).not.toBe(first.signer);
    const noPoint = `0x${"00".repeat(31)}05${first.signature.slice(66)}` as Hex; // no curve point has x = 5
    const none = parseSignedConsent(JSON.stringify(first.typedData), deployment, noPoint);
    await expect(recoverConsentSigner(none)).rejects.toThrow(/recovers to no account/);
  });

  it("refuses to build a change with values the contract cannot take", () => {
    const grant = JSON.parse(JSON.stringify(first.typedData.message)) as Record<string, unknown>;
    delete grant.nonce;
    delete grant.deadline;
    const build = (message: Record<string, unknown>) =>
      consentTypedData({ action: "Grant", message } as unknown as ConsentChange, deployment, 0n, 1n);
    expect(() => build({ ...grant, scopes: 300 })).toThrow(/scopes must be a whole number from 0 to 2\^8-1/);
    expect(() => build({ ...grant, validFrom: 0.5 })).toThrow(ConsentError);
    expect(() => build({ ...grant, extra: 1 })).toThrow(/needs exactly/);
    const change = { action: "Grant", message: grant } as unknown as ConsentChange;
    const negative = () => consentTypedData(change, deployment, -1n, 1n);
    expect(negative).toThrow(/nonce must be a whole number from 0 to 2\^256-1/);
  });
});

describe("in words", () => {
  const byAction = Object.fromEntries(doc.cases.map((c) => [c.primaryType, c.typedData])) as Record<
    ConsentAction,
    ConsentTypedData
  >;
  const { patient, delegate } = doc.accounts;
  const book: Record<Address, string> = { [patient.address]: "alice", [delegate.address]: "bob\n" };
  const names = (address: Address) => book[address];

  it("says who, what, for what and when", () => {
    expect(describeConsent(byAction.Grant, names)).toBe(
      "alice (0x52dc..3055) grants 0xeD95c093444A29736770cc1a09BAd5532d1575e6 access to laboratory, notes for " +
        "treatment (TREAT), from 2023-11-14 22:13:20 UTC until 2024-11-13 22:13:20 UTC, sharing the keys of existing " +
        "records in scope (signature valid until 2027-01-15 08:00:00 UTC)",
    );
    expect(describeConsent(byAction.Revoke)).toBe(
      "0x52dc308296BB453270F1C995899F9af1ad413055 revokes the access of 0xeD95c093444A29736770cc1a09BAd5532d1575e6 " +
        "(signature valid until 2027-01-15 08:00:01 UTC)",
    );
    expect(describeConsent(byAction.AppointDelegate, names)).toBe(
      "alice (0x52dc..3055) appoints bob\\n (0xD9be..A237) as delegate: it may grant laboratory, medications, for up " +
        "to 30 days at a time, not earlier records (signature valid until 2027-01-15 08:00:02 UTC)",
    );
    expect(describeConsent(byAction.RemoveDelegate, names)).toMatch(
      /removes the delegate bob\\n \(0xD9be..A237\); the grants it made end/,
    );
    expect(describeConsent(byAction.ApproveRequest)).toMatch(
      new RegExp(
        "approves the research request of 0xeD95.*: laboratory for healthcare research \\(HRESCH\\), " +
          "30 days from approval, study 0x[0-9a-f]{64}, asked 2023-11-14 22:15:00 UTC \\(signature",
      ),
    );
    expect(describeConsent(byAction.DenyRequest)).toMatch(
      /denies the research request of .*: all categories for .*, 1 day from approval/,
    );
  });

  it("names study labels, odd durations and unknown codes", () => {
    const request = structuredClone(byAction.DenyRequest);
    const label = bytesToHex(new TextEncoder().encode("flu\u001b[2J study")).slice(2);
    Object.assign(request.message, { studyId: `0x${label.padEnd(64, "0")}`, scopes: 0xc1, purpose: 9, duration: 5400 });
    expect(describeConsent(request)).toMatch(
      new RegExp(
        "laboratory, unknown category 6, unknown category 7 for unknown purpose 9 \\(one of: TREAT, .*HOPERAT\\), " +
          "1\\.5 hours from approval, study flu\\\\x1b\\[2J study,",
      ),
    );
    Object.assign(request.message, { scopes: 0, duration: 1 });
    expect(describeConsent(request)).toMatch(/no category for .* 1 second from/);
  });
});
