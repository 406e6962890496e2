/**
 * deserialization.json (RFC 9420 §2.1.2): variable-length vector headers read through our
 * Reader, written back by our Writer, and used as the length of a real `opaque data<V>`.
 */
import { describe, expect, test } from "vitest";
import { DecodeError, Reader, Writer, decodeExact } from "../../../src/mls/codec/index.js";
import { bytesToHex, cases, hex, loadVectors, reportMissing } from "../../vectors/helpers.js";

interface DeserializationVector {
  vlbytes_header: string;
  length: number;
}

const vectors = loadVectors<DeserializationVector>("deserialization.json");
reportMissing("deserialization.json", vectors);

describe.skipIf(vectors === undefined)("deserialization vectors", () => {
  test.each(cases(vectors))("%s", (_label, v) => {
    const header = hex(v.vlbytes_header);
    // The header alone: exactly one varint, all of it read.
    expect(decodeExact(header, (r) => r.varint())).toBe(v.length);
    // Our writer produces the same (shortest) header.
    expect(bytesToHex(new Writer().varint(v.length).finish())).toBe(v.vlbytes_header);
    // As the header of an opaque<V>: with nothing after it, the vector is truncated (unless empty).
    if (v.length > 0) expect(() => new Reader(header).vec()).toThrow(DecodeError);
    // With its `length` bytes (up to 64 KiB here): a view of exactly those bytes.
    if (v.length <= 0x10000) {
      const body = new Uint8Array(v.length).map((_, i) => i & 0xff);
      const all = new Uint8Array(header.length + v.length);
      all.set(header);
      all.set(body, header.length);
      const r = new Reader(all);
      const got = r.vec();
      r.finish();
      expect(got.buffer).toBe(all.buffer);
      expect(bytesToHex(got)).toBe(bytesToHex(body));
      expect(bytesToHex(new Writer().vec(body).finish())).toBe(bytesToHex(all));
    }
  });

  test("every vector was run", () => {
    expect(vectors?.length).toBe(14);
  });
});
