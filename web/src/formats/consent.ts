// Consent changes signed as EIP-712 typed data, for anyone to relay (docs/FORMATS.md, "Consent
// changes (EIP-712)"; Python: medvault.client.consent_sig, and the CLI's --sign-only, --unsigned
// and `medvault relay FILE`).
//
// The document is the eth_signTypedData_v4 JSON the CLI prints and reads, spelled as it spells
// it, so a document signed here relays with `medvault relay FILE` and one `--unsigned` printed
// signs here. A document read in is checked field for field against medvault's types, and its
// domain against the portal's own deployment: typed data for another chain or contract (what a
// phishing page would hand over) is refused in words before anything is shown or signed.

import {
  type Address,
  bytesToHex,
  getAddress,
  hashTypedData,
  type Hex,
  hexToBytes,
  recoverTypedDataAddress,
} from "viem";
import { concatBytes, parseJson, type SignTypedData, type TypedDataJson, viemTypedData } from "./bytes";
import { normalisedSignature } from "./legacy";

/** A consent document or signature that is not what medvault signs, in words. */
export class ConsentError extends Error {
  override name = "ConsentError";
}

export const CONSENT_DOMAIN = { name: "medvault ConsentManager", version: "1" } as const;

/** A delegate signs `nonce | appointment << 64`, so its signatures die with its appointment. */
export const APPOINTMENT_SHIFT = 64n;

const DOMAIN_FIELDS = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;
const AUTH_FIELDS = [
  { name: "nonce", type: "uint256" },
  { name: "deadline", type: "uint256" },
] as const;
const REQUEST_FIELDS = [
  { name: "patient", type: "address" },
  { name: "researcher", type: "address" },
  { name: "scopes", type: "uint8" },
  { name: "purpose", type: "uint8" },
  { name: "duration", type: "uint40" },
  { name: "requestedAt", type: "uint40" },
  { name: "studyId", type: "bytes32" },
] as const; // IConsentManager.AccessRequest, in order

/** The struct of every change, field for field the ConsentManager's typehashes. */
export const CONSENT_TYPES = {
  Grant: [
    { name: "patient", type: "address" },
    { name: "grantee", type: "address" },
    { name: "scopes", type: "uint8" },
    { name: "purpose", type: "uint8" },
    { name: "validFrom", type: "uint40" },
    { name: "validUntil", type: "uint40" },
    { name: "keysCid", type: "bytes" },
    ...AUTH_FIELDS,
  ],
  Revoke: [{ name: "patient", type: "address" }, { name: "grantee", type: "address" }, ...AUTH_FIELDS],
  AppointDelegate: [
    { name: "patient", type: "address" },
    { name: "delegate", type: "address" },
    { name: "scopes", type: "uint8" },
    { name: "maxDuration", type: "uint40" },
    { name: "openHistory", type: "bool" },
    ...AUTH_FIELDS,
  ],
  RemoveDelegate: [
    { name: "patient", type: "address" },
    { name: "delegate", type: "address" },
    { name: "keepGrants", type: "bool" },
    ...AUTH_FIELDS,
  ],
  ApproveRequest: [...REQUEST_FIELDS, { name: "keysCid", type: "bytes" }, ...AUTH_FIELDS],
  DenyRequest: [...REQUEST_FIELDS, ...AUTH_FIELDS],
} as const;

export type ConsentAction = keyof typeof CONSENT_TYPES;
const ACTIONS = Object.keys(CONSENT_TYPES) as ConsentAction[];

/** IConsentManager.AccessRequest, field for field. */
export interface AccessRequest {
  patient: Address;
  researcher: Address;
  scopes: number;
  purpose: number;
  duration: number;
  requestedAt: number;
  studyId: Hex;
}

/** The fields of each change but nonce and deadline; `keysCid` is a binary CID, or "0x" for none. */
export interface ConsentMessages {
  Grant: {
    patient: Address;
    grantee: Address;
    scopes: number;
    purpose: number;
    validFrom: number;
    validUntil: number;
    keysCid: Hex;
  };
  Revoke: { patient: Address; grantee: Address };
  AppointDelegate: { patient: Address; delegate: Address; scopes: number; maxDuration: number; openHistory: boolean };
  RemoveDelegate: { patient: Address; delegate: Address; keepGrants: boolean };
  ApproveRequest: AccessRequest & { keysCid: Hex };
  DenyRequest: AccessRequest;
}

export type ConsentChange = { [A in ConsentAction]: { action: A; message: ConsentMessages[A] } }[ConsentAction];

/** The deployment a document must be made for: the chain and its ConsentManager. */
export interface ConsentDeployment {
  chainId: number | bigint;
  verifyingContract: Address;
}

export interface ConsentTypedData extends TypedDataJson {
  primaryType: ConsentAction;
}

/** What `medvault relay FILE` reads and `--sign-only` prints. */
export interface SignedConsent {
  typedData: ConsentTypedData;
  signature: Hex;
}

/** The contract's `Authorization`: the signed nonce, deadline and domain, and the signature in
 * EIP-2098 compact form. */
export interface Authorization {
  nonce: bigint;
  deadline: bigint;
  chainId: bigint;
  verifyingContract: Address;
  r: Hex;
  vs: Hex;
}

/** The nonce a signature carries: the relationship's, and for a delegate its appointment above. */
export function signedNonce(nonce: bigint, appointment = 0n): bigint {
  return nonce | (appointment << APPOINTMENT_SHIFT);
}

/** The document the signer signs for `change`, with this deployment's domain. */
export function consentTypedData(
  change: ConsentChange,
  deployment: ConsentDeployment,
  nonce: bigint,
  deadline: bigint,
): ConsentTypedData {
  // Integers go in as bigints, as parseJson reads them from a file: one path checks both.
  const exact = (value: unknown, name: string) => {
    if (typeof value !== "number") return value;
    if (!Number.isSafeInteger(value)) throw new ConsentError(`${name} must be a whole number, not ${value}`);
    return BigInt(value);
  };
  const message = Object.fromEntries(Object.entries(change.message).map(([name, value]) => [name, exact(value, name)]));
  const document = {
    types: typesOf(change.action),
    primaryType: change.action,
    domain: {
      ...CONSENT_DOMAIN,
      chainId: exact(deployment.chainId, "chainId"),
      verifyingContract: deployment.verifyingContract,
    },
    message: { ...message, nonce, deadline },
  };
  return normalised(document, deployment);
}

/** Bare typed data, as `--unsigned` prints it, checked and made for `deployment`: to sign here. */
export function parseConsentTypedData(text: string, deployment: ConsentDeployment): ConsentTypedData {
  const raw = readJson(text);
  if (Object.hasOwn(raw, "typedData") || Object.hasOwn(raw, "signature")) {
    throw new ConsentError("this consent document is signed already: relay it, or give the typed data alone to sign");
  }
  return normalised(raw, deployment);
}

/**
 * A signed document (`{"typedData", "signature"}`, as `--sign-only` prints it), or bare typed
 * data with the `signature` a wallet returned for it, checked and made for `deployment`. Any
 * wallet's spelling is taken (addresses in any case, checksums checked when mixed; integers as
 * numbers or decimal or 0x strings; a 65-byte signature with any v and s, or EIP-2098's 64) and
 * the typed data spelled one way; the signature is kept as given (with its 0x).
 */
export function parseSignedConsent(text: string, deployment: ConsentDeployment, signature?: string): SignedConsent {
  const raw = readJson(text);
  const document = Object.hasOwn(raw, "typedData") ? raw.typedData : raw;
  if (Object.hasOwn(raw, "signature") && signature !== undefined) {
    throw new ConsentError("the document carries a signature already: give one only for bare typed data");
  }
  const given = Object.hasOwn(raw, "signature") ? raw.signature : signature;
  if (given === undefined || given === null) {
    throw new ConsentError(
      "no signature: give the wallet's eth_signTypedData_v4 answer, or a document holding typedData and signature",
    );
  }
  const typedData = normalised(document, deployment);
  if (typeof given !== "string") throw new ConsentError(`the signature of this ${typedData.primaryType} is not hex`);
  signatureBytes(given, typedData.primaryType);
  return { typedData, signature: (given.startsWith("0x") ? given : `0x${given}`) as Hex };
}

/** The file `medvault relay FILE` takes: the bytes `SignedConsent.to_json` writes (indented 2). */
export function signedConsentJson(signed: SignedConsent): string {
  return JSON.stringify({ typedData: signed.typedData, signature: signed.signature }, null, 2);
}

/** Signs with `sign` (a wallet, or a local account's signTypedData). */
export async function signConsent(typedData: ConsentTypedData, sign: SignTypedData): Promise<SignedConsent> {
  const signature = await sign(viemTypedData(typedData));
  signatureBytes(signature, typedData.primaryType);
  return { typedData, signature };
}

/** The EIP-712 digest the signer signs and the contract recovers from. */
export function consentDigest(typedData: ConsentTypedData): Hex {
  return hashTypedData(viemTypedData(typedData));
}

/** The account whose key made the signature, over the document as spelled here. */
export async function recoverConsentSigner(signed: SignedConsent): Promise<Address> {
  const action = signed.typedData.primaryType;
  const signature = bytesToHex(signatureBytes(signed.signature, action));
  try {
    return await recoverTypedDataAddress({ ...viemTypedData(signed.typedData), signature });
  } catch {
    // r is the x of no curve point: about half of all made-up signatures
    throw new ConsentError(
      `the signature of this ${action} recovers to no account: it is not a signature of this document`,
    );
  }
}

/** The `auth` argument of the `...BySig` call relaying `signed`. */
export function consentAuthorization(signed: SignedConsent): Authorization {
  const { domain, message, primaryType } = signed.typedData;
  const signature = signatureBytes(signed.signature, primaryType);
  const vs = signature.slice(32, 64);
  if (signature[64] === 28) vs[0]! |= 0x80; // vs = (v - 27) << 255 | s
  return {
    nonce: BigInt(message.nonce!),
    deadline: BigInt(message.deadline!),
    chainId: BigInt(domain.chainId),
    verifyingContract: domain.verifyingContract,
    r: bytesToHex(signature.subarray(0, 32)),
    vs: bytesToHex(vs),
  };
}

// -- reading a document

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A value as a message shows it: JSON, bigints as digits, cut short. */
const show = (value: unknown): string =>
  String(JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v))).slice(0, 80);

function readJson(text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = parseJson(text, { uniqueKeys: true });
  } catch (error) {
    throw new ConsentError(`not a medvault consent document: ${(error as Error).message}`); // not JSON, or a key twice
  }
  if (!isObject(raw)) throw new ConsentError("not a medvault consent document: it is not a JSON object");
  return raw;
}

function typesOf(action: ConsentAction) {
  return { EIP712Domain: DOMAIN_FIELDS, [action]: CONSENT_TYPES[action] };
}

const sameFields = (value: unknown, fields: readonly { name: string; type: string }[]) =>
  Array.isArray(value) &&
  value.length === fields.length &&
  fields.every(({ name, type }, i) => {
    const item: unknown = value[i];
    return isObject(item) && Object.keys(item).length === 2 && item.name === name && item.type === type;
  });

const sameKeys = (value: Record<string, unknown>, fields: readonly { name: string }[]) =>
  Object.keys(value).length === fields.length && fields.every(({ name }) => Object.hasOwn(value, name));

/** `document` checked against medvault's types and `deployment`, spelled as medvault writes it. */
function normalised(document: unknown, deployment: ConsentDeployment): ConsentTypedData {
  if (!isObject(document)) throw new ConsentError("not a medvault consent document: typedData is not a JSON object");
  const action = document.primaryType;
  if (typeof action !== "string" || !(ACTIONS as string[]).includes(action)) {
    throw new ConsentError(
      `not a medvault consent document: primaryType ${show(action)} is none of ${ACTIONS.join(", ")}`,
    );
  }
  const fields = CONSENT_TYPES[action as ConsentAction];
  const { types, domain, message } = document;
  if (!isObject(types) || !isObject(domain) || !isObject(message)) {
    throw new ConsentError(`this ${action} lacks its types, domain or message`);
  }
  for (const [name, expected] of [["EIP712Domain", DOMAIN_FIELDS], [action, fields]] as const) {
    if (!sameFields(types[name], expected)) {
      throw new ConsentError(`the ${name} type of this document is not medvault's: it was not made by medvault`);
    }
  }
  if (Object.keys(types).length !== 2) {
    throw new ConsentError(
      `the types of this ${action} must be EIP712Domain and ${action} alone, not ${Object.keys(types).join(", ")}`,
    );
  }
  if (domain.name !== CONSENT_DOMAIN.name || domain.version !== CONSENT_DOMAIN.version) {
    throw new ConsentError(
      `signed for ${show(domain.name)} version ${show(domain.version)}, not "${CONSENT_DOMAIN.name}" version ` +
        `"${CONSENT_DOMAIN.version}": it was not made for medvault`,
    );
  }
  for (const [part, partFields, values] of [["domain", DOMAIN_FIELDS, domain], [action, fields, message]] as const) {
    if (!sameKeys(values, partFields)) {
      throw new ConsentError(`the ${part} of this ${action} needs exactly ${partFields.map((f) => f.name).join(", ")}`);
    }
  }
  const spelled = (values: Record<string, unknown>, partFields: readonly { name: string; type: string }[]) =>
    Object.fromEntries(partFields.map(({ name, type }) => [name, jsonValue(type, values[name], name)]));
  const result = {
    types: typesOf(action as ConsentAction),
    primaryType: action as ConsentAction,
    domain: spelled(domain, DOMAIN_FIELDS) as ConsentTypedData["domain"],
    message: spelled(message, fields),
  };
  checkDeployment(result, deployment);
  return result;
}

/** The phishing defence: a document made for another chain or ConsentManager is never taken. */
function checkDeployment({ primaryType, domain }: ConsentTypedData, deployment: ConsentDeployment) {
  if (BigInt(domain.chainId) !== BigInt(deployment.chainId)) {
    throw new ConsentError(
      `this ${primaryType} is for chain ${domain.chainId}, this deployment is chain ${deployment.chainId}: ` +
        "it was not made for this deployment; sign it again on this chain",
    );
  }
  if (domain.verifyingContract.toLowerCase() !== deployment.verifyingContract.toLowerCase()) {
    throw new ConsentError(
      `this ${primaryType} is for the ConsentManager at ${domain.verifyingContract}, this deployment's is at ` +
        `${getAddress(deployment.verifyingContract)}: it was not made for this deployment; sign it again for this one`,
    );
  }
}

const JS_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
// What wallets parse: no spaces, signs or "_"; MetaMask reads "0X..." as decimal.
const NUMBER = /^(?:[0-9]+|0x[0-9a-fA-F]+)$/;
const HEX_BYTES = /^0x(?:[0-9a-fA-F]{2})*$/;

/** One field as the JSON medvault writes it: addresses EIP-55, bytes lower-case hex, integers
 * numbers up to 2^53 - 1 and decimal strings above; ConsentError in words otherwise. */
function jsonValue(type: string, value: unknown, name: string): string | number | boolean {
  if (type === "address") return parseAddress(value, name);
  if (type === "bool") {
    if (typeof value !== "boolean") throw new ConsentError(`${name} must be true or false, not ${show(value)}`);
    return value;
  }
  if (type === "string") return value as string; // the domain's name and version, compared already
  if (type.startsWith("bytes")) {
    const size = type === "bytes" ? undefined : Number(type.slice(5));
    if (typeof value !== "string" || !HEX_BYTES.test(value) || (size !== undefined && value.length !== 2 + 2 * size)) {
      const length = size ? ` (${size} bytes)` : "";
      throw new ConsentError(`${name} must be 0x and pairs of hex digits${length}, not ${show(value)}`);
    }
    return value.toLowerCase();
  }
  const bits = BigInt(type.slice(4));
  const number =
    typeof value === "bigint" ? value : typeof value === "string" && NUMBER.test(value) ? BigInt(value) : undefined;
  if (number === undefined || number < 0n || number >= 1n << bits) {
    throw new ConsentError(
      `${name} must be a whole number from 0 to 2^${bits}-1 (a number, or a decimal or 0x string), not ${show(value)}`,
    );
  }
  return number > JS_SAFE ? number.toString() : Number(number);
}

/** An address in lower, upper or EIP-55 case (then the checksum must hold), as EIP-55. */
function parseAddress(value: unknown, name: string): Address {
  if (typeof value !== "string" || !/^0[xX]/.test(value)) {
    throw new ConsentError(`${name} ${show(value)} is not an address: an address is 0x and 40 hex digits`);
  }
  const body = value.slice(2);
  if (!/^[0-9a-fA-F]{40}$/.test(body)) {
    throw new ConsentError(`${name} ${show(value)} is not an address: an address is 0x and 40 hex digits`);
  }
  const address = getAddress(`0x${body.toLowerCase()}`);
  if (body !== body.toLowerCase() && body !== body.toUpperCase() && `0x${body}` !== address) {
    throw new ConsentError(
      `${name} ${value} fails its EIP-55 checksum (the mixed case does not match): ` +
        "a character is mistyped or was changed; copy it again from its source",
    );
  }
  return address;
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** The 65 bytes r || s || v of a signature in any wallet's spelling, with v 27/28 and s low. */
function signatureBytes(text: string, action: string): Uint8Array {
  const hex = text.startsWith("0x") ? text : `0x${text}`;
  if (!HEX_BYTES.test(hex)) throw new ConsentError(`the signature of this ${action} is not hex: ${show(text)}`);
  let raw = hexToBytes(hex as Hex);
  if (raw.length === 64) {
    // EIP-2098: r, then s with the y-parity in its top bit
    const s = raw.slice(32);
    const parity = s[0]! >> 7;
    s[0]! &= 0x7f;
    raw = concatBytes(raw.subarray(0, 32), s, new Uint8Array([27 + parity]));
  }
  const inRange = (part: Uint8Array) => {
    const n = BigInt(bytesToHex(part));
    return n > 0n && n < SECP256K1_N;
  };
  if (raw.length === 65 && !(inRange(raw.subarray(0, 32)) && inRange(raw.subarray(32, 64)))) {
    throw new ConsentError(
      `the signature of this ${action} is not a secp256k1 signature: r and s must be from 1 to the curve order`,
    );
  }
  try {
    return normalisedSignature(raw);
  } catch (error) {
    const why = (error as Error).message;
    throw new ConsentError(`the signature of this ${action}: ${why} (or 64 in EIP-2098 compact form)`);
  }
}

// -- in words (Python: medvault.words)

/** The name a person knows an address by, if any. */
export type Names = (address: Address) => string | undefined;

export const CATEGORIES = ["laboratory", "imaging", "medications", "conditions", "immunizations", "notes"];
export const PURPOSES: [string, string][] = [
  ["TREAT", "treatment"],
  ["ETREAT", "emergency treatment"],
  ["HRESCH", "healthcare research"],
  ["PATRQT", "patient requested"],
  ["FAMRQT", "family requested"],
  ["PUBHLTH", "public health"],
  ["HPAYMT", "healthcare payment"],
  ["HOPERAT", "healthcare operations"],
];

/** The change in one sentence for the person about to sign or relay it. */
export function describeConsent(typedData: ConsentTypedData, names?: Names): string {
  const m = typedData.message;
  const who = (field: string) => person(m[field] as Address, names);
  const int = (field: string) => Number(m[field]);
  const time = (field: string) => utc(BigInt(m[field]!));
  const shares = m.keysCid !== undefined && m.keysCid !== "0x" ? ", sharing the keys of existing records in scope" : "";
  const request = () =>
    `${categories(int("scopes"))} for ${purpose(int("purpose"))}, ${duration(int("duration"))} from approval, ` +
    `study ${study(m.studyId as Hex)}, asked ${time("requestedAt")}`;
  const what = {
    Grant: () =>
      `${who("patient")} grants ${who("grantee")} access to ${categories(int("scopes"))} ` +
      `for ${purpose(int("purpose"))}, ` +
      `from ${time("validFrom")} until ${time("validUntil")}${shares}`,
    Revoke: () => `${who("patient")} revokes the access of ${who("grantee")}`,
    AppointDelegate: () =>
      `${who("patient")} appoints ${who("delegate")} as delegate: it may grant ${categories(int("scopes"))}, ` +
      `for up to ${duration(int("maxDuration"))} at a time, ${m.openHistory ? "including" : "not"} earlier records`,
    RemoveDelegate: () =>
      `${who("patient")} removes the delegate ${who("delegate")}; the grants it made ${m.keepGrants ? "stay" : "end"}`,
    ApproveRequest: () =>
      `${who("patient")} approves the research request of ${who("researcher")}: ${request()}${shares}`,
    DenyRequest: () => `${who("patient")} denies the research request of ${who("researcher")}: ${request()}`,
  }[typedData.primaryType]();
  return `${what} (signature valid until ${time("deadline")})`;
}

function utc(timestamp: bigint): string {
  if (timestamp > 253402300799n) return "after the year 9999"; // beyond what a date holds
  return new Date(Number(timestamp) * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function categories(mask: number): string {
  const bits = [0, 1, 2, 3, 4, 5, 6, 7].filter((bit) => (mask >> bit) & 1);
  if (bits.length === 0) return "no category";
  if (mask === 0x3f) return "all categories";
  return bits.map((bit) => CATEGORIES[bit] ?? `unknown category ${bit}`).join(", ");
}

export function purpose(code: number): string {
  const known = PURPOSES[code];
  if (!known) return `unknown purpose ${code} (one of: ${PURPOSES.map(([name]) => name).join(", ")})`;
  return `${known[1]} (${known[0]})`;
}

export function duration(seconds: number): string {
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]] as const) {
    if (seconds >= size) {
      const n = (seconds / size).toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
      return `${n} ${unit}${n === "1" ? "" : "s"}`;
    }
  }
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

/** A study id (bytes32): its label if it is one, else its hex. */
export function study(id: Hex): string {
  let raw = hexToBytes(id);
  while (raw.length && raw[raw.length - 1] === 0) raw = raw.subarray(0, -1);
  const label = new TextDecoder().decode(raw);
  return label && !label.includes("\ufffd") ? printable(label) : id;
}

/** `name (0x1234..abcd)` when the person knows the address by a name, else the address in full. */
function person(address: Address, names?: Names): string {
  if (BigInt(address) === 0n) return "the zero address";
  const name = names?.(address);
  return name ? `${printable(name)} (${address.slice(0, 6)}..${address.slice(-4)})` : address;
}

/** One line of plain text: control and other unprintable characters escaped as Python escapes
 * them, so a study label or a name cannot forge lines or hide text. */
function printable(text: string): string {
  return text.replace(/[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu, (c) => {
    const code = c.codePointAt(0)!;
    const named = { 9: "\\t", 10: "\\n", 13: "\\r" }[code];
    if (named) return named;
    const [prefix, width] = code < 0x100 ? ["\\x", 2] : code < 0x10000 ? ["\\u", 4] : ["\\U", 8];
    return prefix + code.toString(16).padStart(width, "0");
  });
}
