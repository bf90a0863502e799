import { readFileSync } from "node:fs";
import { type Hex, hexToBytes } from "viem";
import { describe, expect, it } from "vitest";
import { IntegrityError } from "../src/formats/bytes";
import { packEnvelope, unpackEnvelope } from "../src/formats/envelope";

interface Fields {
  why?: string;
  contentType: string;
  name: string;
  body: Hex;
  plaintext: Hex;
}
const vectors = JSON.parse(readFileSync(new URL("../../docs/vectors/envelope.json", import.meta.url), "utf8")) as {
  cases: Fields[];
  decodeOnly: Fields[];
  mustFail: { why: string; plaintext: Hex }[];
};
const fields = (c: Fields) => ({ contentType: c.contentType, name: c.name, body: hexToBytes(c.body) });

describe("plaintext envelope (envelope.json)", () => {
  it.each(vectors.cases)("packs $contentType $name", (c) => {
    expect(packEnvelope(hexToBytes(c.body), c.contentType, c.name)).toEqual(hexToBytes(c.plaintext));
  });

  it.each([...vectors.cases, ...vectors.decodeOnly])("unpacks $contentType $name", (c) => {
    expect(unpackEnvelope(hexToBytes(c.plaintext))).toEqual(fields(c));
  });

  it.each(vectors.mustFail)("refuses: $why", (c) => {
    expect(() => unpackEnvelope(hexToBytes(c.plaintext))).toThrow(IntegrityError);
  });

  it("splits at the first newline only, and reads a missing name as empty", () => {
    const plaintext = packEnvelope(Uint8Array.of(0x0a, 1, 0x0a), "application/octet-stream");
    expect(unpackEnvelope(plaintext)).toEqual({ contentType: "application/octet-stream", name: "", body: Uint8Array.of(0x0a, 1, 0x0a) });
  });
});
