// The key-release protocol from the reader's side (docs/FORMATS.md, "Keeper key-release
// protocol"; Python: medvault.keeper.protocol, medvault.keeper.urls, client.keepers.ask).
//
// A reader who holds no wrap of a record key signs an EIP-712 KeyRequest (patient, index, reader,
// keeper, issuedAt) and POSTs it to each keeper at <url>/v1/key-shares; a keeper that finds the
// grant on chain answers with its share x, HPKE-sealed to the reader with the release info.
// Every way it can fail is a Refusal with a reason: the keeper's own (REASONS, with their HTTP
// statuses) or one the reader finds (unreachable, bad-response, no-url, bad-url).

import { type Address, bytesToHex, getAddress, hashTypedData, type Hex, hexToBytes, isAddress } from "viem";
import {
  concatBytes,
  DecryptionError,
  fromBase64,
  fromUtf8,
  type SignTypedData,
  type TypedDataJson,
  viemTypedData,
} from "./bytes";
import { normalisedSignature } from "./legacy";

export const KEEPER_DOMAIN = { name: "medvault keeper", version: "1" } as const;
export const KEY_SHARES_PATH = "/v1/key-shares";
export const MAX_REQUEST_SKEW = 300; // seconds issuedAt may be from the chain's time, either way
export const MAX_ANSWER = 64 * 1024; // bytes of an answer a reader reads; more is refused
export const DEV_CHAIN_ID = 31337; // the local chain, where keepers on private addresses are contacted

/** Every reason a keeper refuses for, with its HTTP status. */
export const REASONS = {
  malformed: 400, // the body is not a JSON {typedData, signature} object
  "bad-signature": 401, // not a KeyRequest of this deployment, or not signed by its reader
  stale: 401, // issuedAt more than MAX_REQUEST_SKEW seconds from the chain's time
  "wrong-keeper": 421, // addressed to another keeper, or this keeper is not the patient's
  "unknown-record": 404, // the patient's log has no such record
  "no-share": 404, // the record's key bundle escrows no share with this keeper
  "bad-record": 422, // the record's pointer is not a usable CID, or its key bundle is missing or not the patient's
  "no-grant": 403, // the patient never granted the reader access
  revoked: 403, // the patient revoked the reader's grant
  expired: 403, // the grant's window has closed
  "not-yet-valid": 403, // the grant's window has not opened
  "out-of-scope": 403, // the record's category is outside the grant's scopes
  "no-encryption-key": 409, // the reader has no published encryption key
  integrity: 502, // the chain or IPFS returned data that fails verification
  "chain-unavailable": 503, // the Ethereum node does not answer
  "chain-stale": 503, // the block to decide on is older than the keeper's lag allows, or behind its second endpoint
  "chain-disagrees": 502, // the second RPC endpoint holds another block or decides otherwise
  "rate-limited": 429, // the reader asked more often than the keeper's rate allows
  "ipfs-unavailable": 503, // the Kubo node does not answer, or not within the request's 10 s budget
  "too-large": 502, // the keeper set's re-escrow bundle is over the bundle limit (a record's own: bad-record)
  internal: 500, // anything else
} as const;

export type KeeperReason = keyof typeof REASONS;
/** Found by the reader, never sent by a keeper (status 0, or the answer's for bad-response); no-keeper
 * (no keeper the escrow names is in the chain's set) and bad-share (no t shares open the record)
 * are for the caller that asks all keepers and combines. */
export type ReaderReason = "unreachable" | "bad-response" | "no-url" | "bad-url" | "no-keeper" | "bad-share";

/** A keeper's refusal, or the reader's finding that it gave no usable answer. */
export class Refusal extends Error {
  override name = "Refusal";
  readonly status: number;

  constructor(
    readonly reason: KeeperReason | ReaderReason | (string & {}), // or one a newer keeper sends
    readonly detail: string,
    status?: number,
  ) {
    super(`${reason}: ${detail}`);
    this.status = status ?? (REASONS as Record<string, number>)[reason] ?? 500;
  }

  /** The body a keeper sends with it. */
  toJSON(): { error: string; message: string } {
    return { error: this.reason, message: this.detail };
  }
}

/** What a reader asks one keeper for: its share of record `index` of `patient`. */
export interface KeyRequest {
  patient: Address;
  index: number;
  reader: Address;
  keeper: Address;
  issuedAt: number; // Unix seconds, within MAX_REQUEST_SKEW of the chain's time
}

export interface KeyRequestTypedData extends TypedDataJson {
  primaryType: "KeyRequest";
}

/** The POST body: the typed data and the reader's signature of it. */
export interface KeyRequestBody {
  typedData: KeyRequestTypedData;
  signature: Hex;
}

/** A keeper's answer: its share x, HPKE-sealed to the reader. */
export interface ShareRelease {
  keeper: Address;
  x: number;
  wrap: Uint8Array;
  releaseId: Hex;
}

/** The document the reader signs, in the domain of the chain and its KeeperDirectory. */
export function keyRequestTypedData(request: KeyRequest, chainId: number, directory: Address): KeyRequestTypedData {
  const integers = [["index", request.index], ["issuedAt", request.issuedAt], ["chainId", chainId]] as const;
  for (const [name, value] of integers) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a whole number, not ${value}`);
  }
  return {
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
      KeyRequest: [
        { name: "patient", type: "address" },
        { name: "index", type: "uint64" },
        { name: "reader", type: "address" },
        { name: "keeper", type: "address" },
        { name: "issuedAt", type: "uint256" },
      ],
    },
    primaryType: "KeyRequest",
    // The keeper compares the domain as it would write it: EIP-55, a JSON number.
    domain: { ...KEEPER_DOMAIN, chainId, verifyingContract: getAddress(directory) },
    message: {
      patient: getAddress(request.patient),
      index: request.index,
      reader: getAddress(request.reader),
      keeper: getAddress(request.keeper),
      issuedAt: request.issuedAt,
    },
  };
}

/** The release id: the EIP-712 digest of the request, the same for the same request retried. */
export function keyRequestReleaseId(request: KeyRequest, chainId: number, directory: Address): Hex {
  return hashTypedData(viemTypedData(keyRequestTypedData(request, chainId, directory)));
}

/** The body the reader POSTs, signed by `sign` (the reader's wallet or account). */
export async function signKeyRequest(
  request: KeyRequest,
  chainId: number,
  directory: Address,
  sign: SignTypedData,
): Promise<KeyRequestBody> {
  const typedData = keyRequestTypedData(request, chainId, directory);
  const signed = hexToBytes(await sign(viemTypedData(typedData)));
  // Wallets differ in v (27/28 or 0/1) and some give a high s: sent one way, any keeper takes it.
  return { typedData, signature: bytesToHex(normalisedSignature(signed)) };
}

/** A keeper's answer with HTTP `status`: its release, else the Refusal it sent, or bad-response
 * if the answer makes no sense. `from` names the keeper in messages. */
export function parseKeyShareResponse(status: number, text: string, from = "the keeper"): ShareRelease {
  const bad = (why: string) => new Refusal("bad-response", `${from} answered HTTP ${status}: ${why}`, status);
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw bad("not JSON");
  }
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) throw bad("not a JSON object");
  const { error, message, keeper, x, wrap, releaseId } = answer as Record<string, unknown>;
  if (status !== 200) {
    if (typeof error !== "string") throw bad("a refusal without its reason");
    throw new Refusal(error, typeof message === "string" ? message : "", status);
  }
  if (typeof keeper !== "string" || !isAddress(keeper, { strict: false })) throw bad("keeper is not an address");
  if (typeof x !== "number" || !Number.isInteger(x) || x < 1 || x > 255) throw bad("x is not a share index 1..255");
  if (typeof releaseId !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(releaseId)) {
    throw bad("releaseId is not 32 bytes of hex");
  }
  if (typeof wrap !== "string") throw bad("wrap is not base64");
  try {
    return { keeper: getAddress(keeper), x, wrap: fromBase64(wrap), releaseId: releaseId.toLowerCase() as Hex };
  } catch {
    throw bad("wrap is not standard base64");
  }
}

/** `base` if a reader may contact it (keeper/urls.py): http(s), a host, no user info, query or
 * fragment (which could aim the request at another path), and, unless `allowPrivate`, no
 * loopback, private, link-local or otherwise non-global address. A browser cannot resolve names,
 * so only IP literals and localhost are judged by address. Refusal("bad-url") otherwise. */
export function checkKeeperUrl(url: string, allowPrivate: boolean): URL {
  const refuse = (why: string) => new Refusal("bad-url", `${JSON.stringify(url)} ${why}`, 0);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw refuse("is not a URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw refuse("is not http or https");
  if (!parsed.hostname) throw refuse("names no host");
  if (parsed.username || parsed.password) throw refuse("carries user info");
  if (parsed.search || url.includes("?")) throw refuse("carries a query");
  if (parsed.hash || url.includes("#")) throw refuse("carries a fragment");
  if (!allowPrivate && isPrivateHost(parsed.hostname)) {
    throw refuse("points at a loopback, private or link-local address (allowed only for local keepers)");
  }
  return parsed;
}

/** KEY_SHARES_PATH under `base`'s path, joined by URL rules (never by pasting strings). */
export function keySharesUrl(base: URL): URL {
  const folder = new URL(base);
  if (!folder.pathname.endsWith("/")) folder.pathname += "/";
  return new URL(KEY_SHARES_PATH.slice(1), folder);
}

/**
 * Asks one keeper for its share x (the one the record's escrow lists for it) with a signed
 * `body`, at the URL it `announced` (null if none), and opens it with `open` (hpke.ts
 * openShare with releaseInfo(aad, reader, keeper, x), passed in). Every failure is a Refusal:
 * the keeper's, or unreachable (no answer within `timeoutMs`), bad-response (an answer that is
 * too long, makes no sense, is for another keeper or share, or does not open), no-url or bad-url.
 * Private addresses are allowed on the local chain only, unless `allowPrivate` says otherwise.
 */
export async function askKeeper(
  announced: string | null,
  body: KeyRequestBody,
  x: number,
  open: (wrap: Uint8Array) => Promise<Uint8Array>,
  {
    allowPrivate = body.typedData.domain.chainId === DEV_CHAIN_ID,
    fetch: send = fetch,
    timeoutMs = 10_000,
  }: { allowPrivate?: boolean; fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<Uint8Array> {
  const keeper = body.typedData.message.keeper as Address;
  if (announced === null) throw new Refusal("no-url", `keeper ${keeper} never announced a URL`, 0);
  const url = keySharesUrl(checkKeeperUrl(announced, allowPrivate));
  let status: number;
  let answer: Uint8Array | undefined;
  try {
    const response = await send(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      redirect: "manual", // not followed: a redirect is an answer that makes no sense
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    answer = await readAtMost(response, MAX_ANSWER);
  } catch (error) {
    const late = error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError");
    const why = late ? `its answer took longer than ${timeoutMs / 1000} s` : String((error as Error).message || error);
    throw new Refusal("unreachable", `${announced}: ${why}`, 0);
  }
  if (answer === undefined) {
    throw new Refusal("bad-response", `${announced} answered more than ${MAX_ANSWER} bytes`, status);
  }
  let text: string;
  try {
    text = fromUtf8(answer);
  } catch {
    throw new Refusal("bad-response", `${announced} answered HTTP ${status}: not UTF-8 text`, status);
  }
  const release = parseKeyShareResponse(status, text, announced);
  if (release.keeper !== getAddress(keeper) || release.x !== x) {
    throw new Refusal("bad-response", `${announced} answered for keeper ${release.keeper}, share ${release.x}`, 0);
  }
  try {
    return await open(release.wrap);
  } catch (error) {
    if (error instanceof DecryptionError) throw new Refusal("bad-response", error.message, 0);
    throw error;
  }
}

/** The body of `response`, or undefined once it runs past `limit` bytes (read no further). */
async function readAtMost(response: Response, limit: number): Promise<Uint8Array | undefined> {
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concatBytes(...chunks);
    length += value.length;
    if (length > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
}

// -- addresses a reader does not contact (Python's ipaddress: not global, or loopback,
// multicast, reserved or unspecified)

const PRIVATE_V4 = [
  "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/29",
  "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
  "224.0.0.0/3", // multicast, reserved and broadcast
];
// Outside 2000::/3 (global unicast) every IPv6 address is loopback, mapped, unique-local,
// link-local, multicast or reserved; inside it these are not global (Teredo is in 2001::/23).
const PRIVATE_V6_IN_GLOBAL = ["2001::/23", "2001:db8::/32"];

function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/\.$/, "");
  if (host === "localhost" || host.endsWith(".localhost")) return true;
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return isPrivateV4(ipv4(host)); // the URL parser spells every IPv4 so
  if (!host.startsWith("[")) return false; // a name: only its resolver knows
  const address = ipv6(host.slice(1, -1));
  if (!inNet(address, 0x2000n << 112n, 3, 128)) return true;
  if (PRIVATE_V6_IN_GLOBAL.some((net) => inCidr(address, net, 128))) return true;
  // 6to4 (2002::/16) is judged by the IPv4 address it embeds
  return inNet(address, 0x2002n << 112n, 16, 128) && isPrivateV4(Number((address >> 80n) & 0xffffffffn));
}

const isPrivateV4 = (address: number) => PRIVATE_V4.some((net) => inCidr(BigInt(address), net, 32));

function inCidr(address: bigint, cidr: string, bits: number): boolean {
  const [net, prefix] = cidr.split("/") as [string, string];
  return inNet(address, bits === 32 ? BigInt(ipv4(net)) : ipv6(net), Number(prefix), bits);
}

const inNet = (address: bigint, net: bigint, prefix: number, bits: number) =>
  address >> BigInt(bits - prefix) === net >> BigInt(bits - prefix);

const ipv4 = (text: string) => text.split(".").reduce((n, part) => n * 256 + Number(part), 0);

/** An IPv6 address as the URL parser serialises it: hex groups, the longest zero run as "::". */
function ipv6(text: string): bigint {
  const [head = "", tail] = text.split("::");
  const groups = (part: string) => (part ? part.split(":") : []);
  const [left, right] = [groups(head), groups(tail ?? "")];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right].reduce((n, group) => (n << 16n) | BigInt(`0x${group}`), 0n);
}
