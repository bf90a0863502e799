import { readFileSync } from "node:fs";
import {
  type Address,
  bytesToHex,
  hashDomain,
  hashStruct,
  type Hex,
  hexToBytes,
  keccak256,
  recoverTypedDataAddress,
  toBytes,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { DecryptionError, toBase64, viemTypedData } from "../src/formats/bytes";
import { keyPairFromPrivate, openShare, releaseInfo } from "../src/formats/hpke";
import {
  askKeeper,
  checkKeeperUrl,
  KEY_SHARES_PATH,
  type KeyRequest,
  type KeyRequestBody,
  keyRequestReleaseId,
  keyRequestTypedData,
  keySharesUrl,
  MAX_ANSWER,
  parseKeyShareResponse,
  REASONS,
  Refusal,
  signKeyRequest,
} from "../src/formats/keeper";

const vectors = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../docs/vectors/${name}`, import.meta.url), "utf8")) as unknown;
const doc = vectors("keeper.json") as {
  reader: { privateKey: Hex; address: Address };
  typeString: string;
  typeHash: Hex;
  domainSeparator: Hex;
  structHash: Hex;
  releaseId: Hex;
  requestBody: KeyRequestBody;
  responseBody: { keeper: Address; x: number; wrap: string; releaseId: Hex };
  refusalBody: { error: string; message: string };
  reasons: Record<string, number>;
};
const hpke = vectors("hpke.json") as {
  associatedData: Hex;
  recipients: Record<string, { x25519PrivateKey: Hex }>;
  cases: { name: string; reader: Address; keeper: Address; x: number; info: Hex; plaintext: Hex; sealed: Hex }[];
};
const { typedData } = doc.requestBody;
const chainId = typedData.domain.chainId as number;
const directory = typedData.domain.verifyingContract;
const request = typedData.message as unknown as KeyRequest;
const reader = privateKeyToAccount(doc.reader.privateKey);
const release = hpke.cases.find((c) => c.name === "release/X25519")!;

describe("keeper.json", () => {
  it("builds and signs the KeyRequest body byte for byte", async () => {
    expect(keyRequestTypedData(request, chainId, directory)).toEqual(typedData);
    const fields = typedData.types.KeyRequest!.map((f) => `${f.type} ${f.name}`).join(",");
    expect(`KeyRequest(${fields})`).toBe(doc.typeString);
    expect(keccak256(toBytes(doc.typeString))).toBe(doc.typeHash);
    const viem = viemTypedData(typedData);
    expect(hashDomain({ domain: viem.domain!, types: viem.types })).toBe(doc.domainSeparator);
    expect(hashStruct({ data: viem.message, primaryType: "KeyRequest", types: viem.types })).toBe(doc.structHash);
    expect(keyRequestReleaseId(request, chainId, directory)).toBe(doc.releaseId);
    expect(doc.responseBody.releaseId).toBe(doc.releaseId);

    const body = await signKeyRequest(request, chainId, directory, (t) => reader.signTypedData(t));
    expect(body).toEqual(doc.requestBody);
    expect(await recoverTypedDataAddress({ ...viem, signature: body.signature })).toBe(doc.reader.address);
  });

  it("sends a wallet's other spellings of the signature the one way", async () => {
    const signature = hexToBytes(doc.requestBody.signature);
    const parity = bytesToHex(new Uint8Array([...signature.subarray(0, 64), signature[64]! - 27]));
    const body = await signKeyRequest(request, chainId, directory, async () => parity);
    expect(body.signature).toBe(doc.requestBody.signature);
  });

  it("writes addresses EIP-55, as the keeper compares them", () => {
    const lower = (address: Address) => address.toLowerCase() as Address;
    const { patient, reader, keeper } = request;
    const lowered = { ...request, patient: lower(patient), reader: lower(reader), keeper: lower(keeper) };
    expect(keyRequestTypedData(lowered, chainId, lower(directory))).toEqual(typedData);
    expect(() => keyRequestTypedData({ ...request, index: -1 }, chainId, directory)).toThrow(RangeError);
    expect(() => keyRequestTypedData({ ...request, issuedAt: 1.5 }, chainId, directory)).toThrow(RangeError);
  });

  it("reads the keeper's answer: its share, sealed to the reader", () => {
    const answer = parseKeyShareResponse(200, JSON.stringify(doc.responseBody));
    expect({ ...answer, wrap: bytesToHex(answer.wrap) }).toEqual({ ...doc.responseBody, wrap: release.sealed });
    expect(answer.keeper).toBe(release.keeper);
    expect(answer.x).toBe(release.x);
  });

  it("reads the refusal vector as the keeper's Refusal", () => {
    const refusal = catchRefusal(() => parseKeyShareResponse(403, JSON.stringify(doc.refusalBody)));
    expect(refusal).toMatchObject({ reason: "no-grant", status: 403, detail: doc.refusalBody.message });
    expect(refusal.toJSON()).toEqual(doc.refusalBody);
  });

  it("knows every reason with its status, in the spec's order", () => {
    expect(REASONS).toEqual(doc.reasons);
    expect(Object.keys(REASONS)).toEqual(Object.keys(doc.reasons));
  });

  it.each(Object.entries(doc.reasons))("refuses with %s (HTTP %i)", (reason, status) => {
    expect(new Refusal(reason, "why").status).toBe(status);
    const body = JSON.stringify({ error: reason, message: "why" });
    const refusal = catchRefusal(() => parseKeyShareResponse(status, body));
    expect(refusal).toMatchObject({ reason, status, detail: "why", message: `${reason}: why` });
  });

  it("calls an answer that makes no sense bad-response", () => {
    const ok = doc.responseBody;
    for (const [status, text] of [
      [200, "<html>"],
      [200, "[]"],
      [200, JSON.stringify({ ...ok, keeper: "0x1234" })],
      [200, JSON.stringify({ ...ok, x: 0 })],
      [200, JSON.stringify({ ...ok, x: "1" })],
      [200, JSON.stringify({ ...ok, x: 256 })],
      [200, JSON.stringify({ ...ok, wrap: ok.wrap.slice(1) })],
      [200, JSON.stringify({ ...ok, wrap: ok.wrap.replace(/\+/g, "-") })],
      [200, JSON.stringify({ ...ok, releaseId: "0x12" })],
      [200, JSON.stringify({ ...ok, wrap: undefined })],
      [502, "Bad Gateway"],
      [403, JSON.stringify({ message: "no reason" })],
    ] as const) {
      expect(catchRefusal(() => parseKeyShareResponse(status, text))).toMatchObject({ reason: "bad-response", status });
    }
    // A keeper's unknown reason is kept, with the status it came with.
    const teapot = catchRefusal(() => parseKeyShareResponse(418, '{"error":"teapot"}'));
    expect(teapot).toMatchObject({ reason: "teapot", status: 418, detail: "" });
  });
});

describe("keeper URLs", () => {
  it("joins the path under the announced URL's path", () => {
    expect(KEY_SHARES_PATH).toBe("/v1/key-shares");
    for (const [base, joined] of [
      ["https://keeper.example", "https://keeper.example/v1/key-shares"],
      ["https://keeper.example/", "https://keeper.example/v1/key-shares"],
      ["https://keeper.example/medvault", "https://keeper.example/medvault/v1/key-shares"],
      ["http://keeper.example:8080/a/b/", "http://keeper.example:8080/a/b/v1/key-shares"],
    ]) {
      expect(keySharesUrl(new URL(base!)).href).toBe(joined);
    }
  });

  it("contacts only public http(s) URLs with no user info, query or fragment", () => {
    for (const url of [
      "https://keeper.example",
      "http://8.8.8.8:8080/keeper",
      "http://[2606:4700::1111]/",
      "http://[2002:808:808::1]/", // 6to4 of 8.8.8.8
    ]) {
      expect(checkKeeperUrl(url, false).href).toBe(new URL(url).href);
    }
    for (const [url, why] of [
      ["not a url", /is not a URL/],
      ["ftp://keeper.example", /is not http or https/],
      ["javascript:alert(1)", /is not http or https/],
      ["https://user:pw@keeper.example", /carries user info/],
      ["https://keeper.example/?cmd=x", /carries a query/],
      ["https://keeper.example/?", /carries a query/],
      ["https://keeper.example/#x", /carries a fragment/],
      ["https://keeper.example/#", /carries a fragment/],
    ] as const) {
      const refusal = catchRefusal(() => checkKeeperUrl(url, true));
      expect(refusal).toMatchObject({ reason: "bad-url", status: 0, detail: expect.stringMatching(why) });
    }
  });

  it.each([
    "http://127.0.0.1:8000",
    "http://localhost:8000",
    "http://keeper.localhost/",
    "http://10.1.2.3",
    "http://172.16.0.1",
    "http://192.168.1.1",
    "http://100.64.0.1",
    "http://169.254.169.254/latest",
    "http://0.0.0.0",
    "http://224.0.0.1",
    "http://255.255.255.255",
    "http://0x7f.1/", // 127.0.0.1 as the URL parser reads it
    "http://2130706433/",
    "http://[::1]/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:8.8.8.8]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[ff02::1]/",
    "http://[2001:db8::1]/",
    "http://[2001::1]/", // Teredo
    "http://[2002:7f00:1::]/", // 6to4 of 127.0.0.1
  ])("refuses the private address of %s unless private keepers are allowed", (url) => {
    const refusal = catchRefusal(() => checkKeeperUrl(url, false));
    expect(refusal).toMatchObject({ reason: "bad-url", detail: expect.stringMatching(/private/) });
    expect(checkKeeperUrl(url, true)).toBeInstanceOf(URL);
  });
});

describe("asking a keeper", () => {
  const pair = keyPairFromPrivate(hexToBytes(hpke.recipients["reader/X25519"]!.x25519PrivateKey), "X25519");
  const info = releaseInfo(hexToBytes(hpke.associatedData), release.reader, release.keeper, release.x);
  const open = (wrap: Uint8Array) => openShare(wrap, pair, info, "the share from keeper-1");
  const answering = (status: number, body: BodyInit, seen?: (url: string, init: RequestInit) => void) =>
    (async (url: URL, init?: RequestInit) => {
      seen?.(url.href, init!);
      return new Response(body, { status });
    }) as typeof fetch;

  it("POSTs the signed request and opens the share it answers with", async () => {
    expect(bytesToHex(info)).toBe(release.info);
    let sent: { url: string; init: RequestInit } | undefined;
    const fetch = answering(200, JSON.stringify(doc.responseBody), (url, init) => (sent = { url, init }));
    const share = await askKeeper("https://keeper.example/k", doc.requestBody, 1, open, { fetch });
    expect(bytesToHex(share)).toBe(release.plaintext);
    expect(sent!.url).toBe("https://keeper.example/k/v1/key-shares");
    const headers = { "Content-Type": "application/json" };
    expect(sent!.init).toMatchObject({ method: "POST", redirect: "manual", headers });
    expect(JSON.parse(sent!.init.body as string)).toEqual(doc.requestBody);
  });

  it("hands on the keeper's refusal", async () => {
    const fetch = answering(403, JSON.stringify(doc.refusalBody));
    await expect(askKeeper("https://keeper.example", doc.requestBody, 1, open, { fetch })).rejects.toMatchObject({
      reason: "no-grant",
      status: 403,
    });
  });

  it("refuses an answer for another share or keeper, one that does not open, or one too long", async () => {
    const ok = JSON.stringify(doc.responseBody);
    const cases: [BodyInit, number, (w: Uint8Array) => Promise<Uint8Array>][] = [
      [ok, 2, open],
      [JSON.stringify({ ...doc.responseBody, keeper: doc.reader.address }), 1, open],
      [JSON.stringify({ ...doc.responseBody, wrap: toBase64(new Uint8Array(80)) }), 1, open],
      ["x".repeat(MAX_ANSWER + 1), 1, open],
      [new Uint8Array([0xff, 0xfe]), 1, open],
      [ok, 1, () => Promise.reject(new DecryptionError("the share from keeper-1"))],
    ];
    for (const [body, x, opener] of cases) {
      const asked = askKeeper("https://keeper.example", doc.requestBody, x, opener, { fetch: answering(200, body) });
      await expect(asked).rejects.toMatchObject({ reason: "bad-response" });
    }
  });

  it("calls a keeper that does not answer, or not in time, unreachable", async () => {
    const down = (async () => {
      throw new TypeError("fetch failed");
    }) as typeof fetch;
    await expect(askKeeper("https://keeper.example", doc.requestBody, 1, open, { fetch: down })).rejects.toMatchObject({
      reason: "unreachable",
      status: 0,
      detail: "https://keeper.example: fetch failed",
    });
    const slow = ((_: URL, init?: RequestInit) =>
      new Promise((_resolve, reject) => {
        init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason));
      })) as typeof fetch;
    const late = askKeeper("https://keeper.example", doc.requestBody, 1, open, { fetch: slow, timeoutMs: 20 });
    await expect(late).rejects.toMatchObject({
      reason: "unreachable",
      detail: expect.stringMatching(/took longer than 0.02 s/),
    });
  });

  it("contacts no keeper without a URL, or at a URL it may not", async () => {
    const fetch = answering(200, JSON.stringify(doc.responseBody));
    const ask = (url: string | null) => askKeeper(url, doc.requestBody, 1, open, { fetch });
    await expect(ask(null)).rejects.toMatchObject({ reason: "no-url", status: 0 });
    await expect(ask("https://keeper.example/?x")).rejects.toMatchObject({ reason: "bad-url" });
    // private addresses only on the local chain (the vectors' 31337) or when allowed
    expect(await askKeeper("http://127.0.0.1:9000", doc.requestBody, 1, open, { fetch })).toHaveLength(32);
    const refused = askKeeper("http://127.0.0.1:9000", doc.requestBody, 1, open, { fetch, allowPrivate: false });
    await expect(refused).rejects.toMatchObject({ reason: "bad-url" });
  });
});

function catchRefusal(f: () => unknown): Refusal {
  try {
    f();
  } catch (error) {
    if (error instanceof Refusal) return error;
    throw error;
  }
  throw new Error("no Refusal");
}
