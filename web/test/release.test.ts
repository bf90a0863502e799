// app/release.ts without a chain: shares combined as keepers answer, checked by decrypting, the
// refusals said in words; and the keeper source end to end against keepers played by a fake
// fetch behind the portal's proxy path, with a fake session.
import { type Address, getAddress, type Hex, keccak256, recoverTypedDataAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { toBase64, utf8, viemTypedData } from "../src/formats/bytes";
import { packEnvelope } from "../src/formats/envelope";
import { generateKeyPair, releaseInfo, sealShare } from "../src/formats/hpke";
import { KEY_SHARES_PATH, type KeyRequestBody, Refusal } from "../src/formats/keeper";
import type { Escrow, KeyBundle } from "../src/formats/keybundle";
import { associatedData, newRecordKey, type RecordContext, sealRecord } from "../src/formats/record";
import { splitKey } from "../src/formats/shamir";
import type { Keys } from "../src/app/keys";
import type { RecordPointer } from "../src/app/records";
import { keeperSource, KeepersRefusedError, opensRecord, refusalSentence, releasedKey } from "../src/app/release";
import type { Session } from "../src/app/session";

const address = (n: number) => getAddress(`0x${n.toString(16).padStart(40, "0")}`);
const reader = privateKeyToAccount(`0x${"11".repeat(32)}`);
const [patient, author, registry, directory] = [0xa11ce, 0xd0c, 0x4e9, 0xd1e].map(address) as Address[];
const keepers = [0x101, 0x102, 0x103].map(address) as Address[];
const context: RecordContext = { chainId: 31337, registry: registry!, patient: patient!, author: author!, seq: 0n };

async function record() {
  const key = newRecordKey();
  const blob = await sealRecord(packEnvelope(utf8("hello"), "text/plain"), key, context);
  const shares = splitKey(key, 2, 3);
  const escrow: Escrow = { threshold: 2, shares: keepers.map((k, i) => ({ keeper: k, x: i + 1, wrap: new Uint8Array() })) };
  return { key, blob, shares, escrow, opens: (k: Uint8Array) => opensRecord(blob, k, context) };
}

describe("releasedKey", () => {
  it("returns the key once threshold shares open the record, without waiting for the rest", async () => {
    const { key, shares, escrow, opens } = await record();
    let lateAsked = false;
    const ask = async (keeper: Address, x: number) => {
      if (keeper === keepers[2]) {
        lateAsked = true;
        return new Promise<Uint8Array>(() => {}); // never answers
      }
      return shares[x - 1]!.share;
    };
    expect(await releasedKey(escrow, keepers, ask, opens)).toEqual(key);
    expect(lateAsked).toBe(true);
  });

  it("sets aside a bad share for another combination", async () => {
    const { key, shares, escrow, opens } = await record();
    const ask = async (_: Address, x: number) => (x === 1 ? new Uint8Array(32).fill(9) : shares[x - 1]!.share);
    expect(await releasedKey(escrow, keepers, ask, opens)).toEqual(key);
  });

  it("says why when too few keepers release", async () => {
    const { shares, escrow, opens } = await record();
    const ask = async (_: Address, x: number) => {
      if (x === 1) return shares[0]!.share;
      throw new Refusal("expired", "the grant expired at 2025-01-01 00:00 UTC", 403);
    };
    const failing = releasedKey(escrow, keepers, ask, opens);
    await expect(failing).rejects.toThrow(KeepersRefusedError);
    await expect(failing).rejects.toThrow(
      "2 of 3 keepers refused: expired (the grant's window has closed). 1 of the 2 shares needed was released.",
    );
  });

  it("only asks the keepers of the chain's set, and says so when none is", async () => {
    const { escrow, opens } = await record();
    const asked: Address[] = [];
    const ask = async (keeper: Address) => {
      asked.push(keeper);
      throw new Refusal("unreachable", "no answer", 0);
    };
    await expect(releasedKey(escrow, [keepers[1]!], ask, opens)).rejects.toThrow("1 of 1 keeper refused: unreachable");
    expect(asked).toEqual([keepers[1]]);
    await expect(releasedKey(escrow, [address(7)], ask, opens)).rejects.toThrow(/No keeper could be asked/);
  });

  it("names shares that do not open the record", async () => {
    const { escrow, opens } = await record();
    const ask = async () => new Uint8Array(32).fill(1);
    await expect(releasedKey(escrow, keepers, ask, opens)).rejects.toThrow(/The 3 released shares do not open the record/);
  });

  it("stops at the first error that is not a keeper's refusal (the user declining to sign)", async () => {
    const { escrow, opens } = await record();
    const ask = async () => {
      throw new Error("You declined to sign in your wallet");
    };
    await expect(releasedKey(escrow, keepers, ask, opens)).rejects.toThrow(/declined/);
  });

  it("counts mixed reasons", () => {
    const refusals = new Map([
      ["a", new Refusal("expired", "")],
      ["b", new Refusal("unreachable", "", 0)],
      ["c", new Refusal("expired", "")],
      ["d", new Refusal("brand-new", "a newer keeper's reason")],
    ]);
    expect(refusalSentence(0, 2, 4, refusals)).toBe(
      "4 of 4 keepers refused: 2 expired (the grant's window has closed), 1 brand-new (a newer keeper's reason), " +
        "1 unreachable (it did not answer). 0 of the 2 shares needed were released.",
    );
  });
});

describe("keeperSource", () => {
  it("signs one KeyRequest per keeper, posts it to the portal's proxy and combines the answers", async () => {
    const { key, blob, shares } = await record();
    const pair = generateKeyPair("X25519");
    const keyHash = keccak256(pair.publicKey);
    const aad = associatedData(context);
    const posted: string[] = [];
    const fetch = (async (url: URL | string, init?: RequestInit) => {
      posted.push(String(url));
      const body = JSON.parse(String(init!.body)) as KeyRequestBody;
      const { message, domain } = body.typedData;
      expect(await recoverTypedDataAddress({ ...viemTypedData(body.typedData), signature: body.signature })).toBe(reader.address);
      expect(domain).toMatchObject({ chainId: 31337, verifyingContract: directory });
      expect(message).toMatchObject({ patient, index: 5, reader: reader.address, issuedAt: 1_700_000_000 });
      const keeper = message.keeper as Address;
      const x = keepers.indexOf(keeper) + 1;
      if (x === 3) return new Response(JSON.stringify({ error: "revoked", message: "revoked" }), { status: 403 });
      const wrap = await sealShare(shares[x - 1]!.share, pair.publicKey, releaseInfo(aad, reader.address, keeper, x));
      const answer = { keeper, x, wrap: toBase64(wrap), releaseId: `0x${"00".repeat(32)}` };
      return new Response(JSON.stringify(answer), { status: 200 });
    }) as typeof globalThis.fetch;
    const reads: Record<string, unknown> = {
      keepersOf: [keepers, 2, "0x"],
      encryptionKeyHash: keyHash,
      canReadRecord: true,
    };
    const session = {
      account: reader.address,
      config: { chainId: 31337, maxRecordBytes: 1 << 20 },
      contract: (name: string) => ({ address: { KeeperDirectory: directory, RecordRegistry: registry }[name] }),
      read: async (_: string, fn: string) => reads[fn],
      now: async () => 1_700_000_000n,
      signTypedData: (typedData: Parameters<typeof reader.signTypedData>[0]) => reader.signTypedData(typedData),
    } as unknown as Session;
    const keys = { published: (_: Session, hash: Hex) => (hash === keyHash ? pair : undefined) } as unknown as Keys;
    const source = keeperSource(session, keys, { base: "http://portal.test", fetch });
    const pointer = { patient, index: 5n, author, seq: 0n, category: 0, timestamp: 1_699_999_000n } as RecordPointer;
    const bundle = { escrow: { threshold: 2, shares: keepers.map((k, i) => ({ keeper: k, x: i + 1, wrap: new Uint8Array() })) } } as KeyBundle;
    expect(await source(pointer, bundle, blob)).toEqual(key);
    expect(posted.slice(0, 2).sort()).toEqual(keepers.slice(0, 2).map((k) => `http://portal.test/keepers/${k}${KEY_SHARES_PATH}`));

    // A record the chain would not let the reader read: no keeper is asked, and the reason is said.
    posted.length = 0;
    reads.canReadRecord = false;
    reads.grantOf = { validFrom: 1_600_000_000, validUntil: 1_800_000_000, scopes: 0b10 };
    await expect(source(pointer, bundle, blob)).rejects.toThrow(
      "The chain does not let you read this record now: record 5 is laboratory, outside your grant's scope. The keepers were not asked.",
    );
    reads.grantOf = { validFrom: 1_600_000_000, validUntil: 1_650_000_000, scopes: 1 };
    await expect(source(pointer, bundle, blob)).rejects.toThrow(/your grant expired at 2022-04-15 05:20 UTC/);
    expect(posted).toEqual([]);
  });

  it("asks for the key to be unlocked first", async () => {
    const source = keeperSource({} as Session, undefined, { base: "http://portal.test" });
    await expect(source({} as RecordPointer, {} as KeyBundle, new Uint8Array())).rejects.toThrow(/Unlock your key/);
  });
});
