/** Minimal TLS presentation-language helpers (RFC 9420 §2.1.2 variable-size vectors). */

import { bytesEqual, concatByteArrays } from "./crypto/bytes.js";

// One implementation of each, in crypto/bytes.ts; here under the names the MLS code uses.
export { bytesEqual, concatByteArrays as concatBytes };

/** RFC 9420 §2.1.2 variable-length integer header. */
export function encodeVarint(n: number): Uint8Array {
  if (n < 0x40) return Uint8Array.of(n);
  if (n < 0x4000) return Uint8Array.of(0x40 | (n >> 8), n & 0xff);
  if (n < 0x40000000) return Uint8Array.of(0x80 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  throw new RangeError("vector too long");
}

export function encodeVarBytes(b: Uint8Array): Uint8Array {
  return concatByteArrays([encodeVarint(b.length), b]);
}
