// The record plaintext (docs/FORMATS.md, "Plaintext envelope"; Python: medvault.formats.envelope):
// a compact JSON header {"contentType","name"}, 0x0a, then the body untouched, so any bytes fit.

import { asciiJson, concatBytes, fromUtf8, IntegrityError, parseJson, utf8 } from "./bytes";

export interface Envelope {
  contentType: string;
  name: string;
  body: Uint8Array;
}

const NEWLINE = 0x0a;

/** The plaintext to seal for `body`: always the same bytes for the same inputs. */
export function packEnvelope(body: Uint8Array, contentType: string, name = ""): Uint8Array {
  return concatBytes(utf8(asciiJson({ contentType, name })), Uint8Array.of(NEWLINE), body);
}

/**
 * The header and body of a decrypted record. Lenient as the Python reader is (any JSON object
 * with a string contentType, in any spelling); IntegrityError when there is no such header line.
 */
export function unpackEnvelope(plaintext: Uint8Array): Envelope {
  const end = plaintext.indexOf(NEWLINE);
  let header: unknown;
  try {
    header = end < 0 ? undefined : parseJson(fromUtf8(plaintext.subarray(0, end)));
  } catch {
    header = undefined;
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw noHeader();
  const { contentType, name } = header as Record<string, unknown>;
  if (typeof contentType !== "string") throw noHeader();
  // No writer puts anything but a string in `name`; anything else reads as no name.
  return { contentType, name: typeof name === "string" ? name : "", body: plaintext.subarray(end + 1) };
}

const noHeader = () => new IntegrityError("the record's plaintext has no medvault header line");
