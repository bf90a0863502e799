// Byte helpers shared by the formats of docs/FORMATS.md. Hex, keccak and ABI come from viem;
// what is here is what viem does not spell the way the formats need.

import type { Address, Hex, TypedDataDefinition } from "viem";

export class IntegrityError extends Error {
  override name = "IntegrityError";
}

export class DecryptionError extends Error {
  override name = "DecryptionError";
}

/** A keystore or key file that cannot be opened or written as asked (not its bytes' fault). */
export class KeystoreError extends Error {
  override name = "KeystoreError";
}

/** The passphrase (or passkey secret) is not the one the keystore or key file was sealed under. */
export class WrongPassphraseError extends KeystoreError {
  override name = "WrongPassphraseError";
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
export const fromUtf8 = (bytes: Uint8Array): string => new TextDecoder("utf-8", { fatal: true }).decode(bytes);

// One character class, no nested groups: linear on megabytes (a grouped pattern overflows V8's stack).
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard base64 (RFC 4648 section 4, with padding). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** Standard base64 only: any other character or a missing pad is refused, as the Python reader does. */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new IntegrityError("not standard base64");
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/**
 * Compact JSON with non-ASCII escaped as \uXXXX: the bytes Python's
 * json.dumps(value, separators=(",", ":")) writes (ensure_ascii), which the envelope header
 * and the key bundle fix.
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

/** Typed data in the eth_signTypedData_v4 JSON shape medvault writes: integers as JSON numbers,
 * or as decimal strings where a JavaScript number would not hold them exactly. */
export interface TypedDataJson {
  types: Record<string, readonly { name: string; type: string }[]>;
  primaryType: string;
  domain: { name: string; version: string; chainId: number | string; verifyingContract: Address };
  message: Record<string, string | number | boolean>;
}

/** `document` as viem hashes and signs it: every uint a bigint, as viem types them. */
export function viemTypedData(document: TypedDataJson): TypedDataDefinition<Record<string, unknown>, string> {
  const fields = document.types[document.primaryType] ?? [];
  const message = Object.fromEntries(
    fields.map(({ name, type }) => {
      const value = document.message[name]!;
      return [name, type.startsWith("uint") ? BigInt(value) : value];
    }),
  );
  const domain = { ...document.domain, chainId: BigInt(document.domain.chainId) };
  return { types: document.types, primaryType: document.primaryType, domain, message };
}

/** What signs typed data: a local account's signTypedData, or a wallet client's bound to its account. */
export type SignTypedData = (typedData: TypedDataDefinition<Record<string, unknown>, string>) => Promise<Hex>;

const JSON_STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const JSON_NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?/y;
const JSON_WORDS: [string, unknown][] = [
  ["true", true], ["false", false], ["null", null], ["NaN", NaN], ["Infinity", Infinity], ["-Infinity", -Infinity],
];

/**
 * JSON as Python's json.loads reads it, for readers that must tell a JSON integer from any other
 * number as the Python reader does (`type(v) is int`: 1 is one, 1.0 is not): an integer is a
 * bigint (exact at any size), any other number a number; NaN and ±Infinity are taken, as Python
 * takes them. Throws SyntaxError for anything else, and with `uniqueKeys` for a key given twice
 * in one object (Python's consent reader refuses it: readers disagree on which value counts).
 */
export function parseJson(text: string, { uniqueKeys = false }: { uniqueKeys?: boolean } = {}): unknown {
  let at = 0;
  const fail = (): never => {
    throw new SyntaxError(`not JSON (at character ${at})`);
  };
  const skipSpace = () => {
    while (text[at] === " " || text[at] === "\t" || text[at] === "\n" || text[at] === "\r") at++;
  };
  const token = (pattern: RegExp): RegExpExecArray | null => {
    pattern.lastIndex = at;
    const match = pattern.exec(text);
    if (match) at = pattern.lastIndex;
    return match;
  };
  const string = (): string => JSON.parse((token(JSON_STRING) ?? fail())[0]) as string;
  // The items of an object or array, `open` already read: `item` reads one, up to `close`.
  const items = (close: string, item: () => void) => {
    skipSpace();
    if (text[at] === close) return void at++;
    for (;;) {
      item();
      skipSpace();
      const next = text[at++];
      if (next === close) return;
      if (next !== ",") fail();
    }
  };
  const value = (): unknown => {
    skipSpace();
    if (text[at] === "{") {
      at++;
      const object: Record<string, unknown> = {};
      items("}", () => {
        skipSpace();
        const key = string();
        skipSpace();
        if (text[at++] !== ":") fail();
        if (uniqueKeys && Object.hasOwn(object, key)) throw new SyntaxError(`it names ${JSON.stringify(key)} twice`);
        // defineProperty: a "__proto__" key is data, as JSON.parse makes it, not the prototype
        Object.defineProperty(object, key, { value: value(), enumerable: true, writable: true, configurable: true });
      });
      return object;
    }
    if (text[at] === "[") {
      at++;
      const array: unknown[] = [];
      items("]", () => array.push(value()));
      return array;
    }
    if (text[at] === '"') return string();
    const word = JSON_WORDS.find(([spelling]) => text.startsWith(spelling, at));
    if (word) {
      at += word[0].length;
      return word[1];
    }
    const number = token(JSON_NUMBER) ?? fail();
    return number[1] === undefined && number[2] === undefined ? BigInt(number[0]) : Number(number[0]);
  };
  const result = value();
  skipSpace();
  if (at !== text.length) fail();
  return result;
}
