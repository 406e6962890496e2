/**
 * Small byte helpers shared by the crypto providers. No platform imports:
 * this module is bundled for browsers too.
 * @module
 */

/** Concatenates byte arrays into a fresh Uint8Array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  return concatByteArrays(parts);
}

/** `concatBytes` for a list built elsewhere (no spread). */
export function concatByteArrays(parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** I2OSP(n, w) of RFC 8017 / RFC 9180 Section 4: big-endian, fixed width. */
export function i2osp(n: number, w: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0 || n >= 2 ** (8 * w))
    throw new RangeError(`i2osp: ${n} does not fit ${w} bytes`);
  const out = new Uint8Array(w);
  for (let i = w - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

const encoder = /* @__PURE__ */ new TextEncoder();

/** UTF-8 encoding of a string. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Copies a view into a standalone Uint8Array (never a Buffer, never shared). */
export function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** Byte-wise equality (not constant time: for public values; see `constantTimeEqual`). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Constant-time equality for equal-length inputs; `false` on length mismatch. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** True if every byte is zero (RFC 9180 Section 7.1.4 all-zero DH output check). */
export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i] as number;
  return acc === 0;
}

/**
 * Left-pads a big-endian integer to `len` bytes. Accepts longer inputs only if
 * the surplus leading bytes are zero (e.g. P-521 scalars of 65 or 67 bytes,
 * see mlswg/mls-implementations#176).
 */
export function leftPad(b: Uint8Array, len: number): Uint8Array {
  if (b.length === len) return b;
  if (b.length < len) {
    const out = new Uint8Array(len);
    out.set(b, len - b.length);
    return out;
  }
  const extra = b.length - len;
  for (let i = 0; i < extra; i++) if (b[i] !== 0) throw new RangeError(`integer longer than ${len} bytes`);
  return b.subarray(extra);
}

/** Big-endian compare of equal-length byte strings: -1, 0 or 1. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError("compareBytes: length mismatch");
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[65 + i] = 10 + i;
  NIBBLE[97 + i] = 10 + i;
}

/** ASCII codes of HEX, two per byte value. */
const HEX_CODES = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  HEX_CODES[2 * i] = (HEX[i] as string).charCodeAt(0);
  HEX_CODES[2 * i + 1] = (HEX[i] as string).charCodeAt(1);
}
// ASCII bytes decode the same in every single-byte encoding; "latin1" is windows-1252 in WHATWG.
const ASCII = new TextDecoder("latin1");

/**
 * Lowercase hex (table-driven: the keystore runs this for every key of every row). Decoded from one byte
 * buffer, so the result is a flat string: a `+=` chain would stay a rope of 2n cons cells for
 * as long as the string lives as a row key.
 */
export function bytesToHex(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n < 8) {
    let s = "";
    for (let i = 0; i < n; i++) s += HEX[bytes[i] as number];
    return s;
  }
  // Keys and refs (≤ 64 bytes) go through one reused buffer: no garbage but the string.
  const out = n <= HEX_SCRATCH_BYTES ? hexScratch(2 * n) : new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    const v = (bytes[i] as number) << 1;
    out[2 * i] = HEX_CODES[v] as number;
    out[2 * i + 1] = HEX_CODES[v + 1] as number;
  }
  return ASCII.decode(out);
}

const HEX_SCRATCH_BYTES = 64;
const HEX_SCRATCH = new Uint8Array(2 * HEX_SCRATCH_BYTES);
/** Views of `HEX_SCRATCH` by length (bytesToHex is synchronous, so one buffer serves every call). */
const HEX_VIEWS: Uint8Array[] = [];
function hexScratch(len: number): Uint8Array {
  return (HEX_VIEWS[len] ??= HEX_SCRATCH.subarray(0, len));
}

/** Hex (either case) to bytes; throws `TypeError` on odd length or a non-hex character. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new TypeError("invalid hex string");
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const c1 = hex.charCodeAt(2 * i);
    const c2 = hex.charCodeAt(2 * i + 1);
    const hi = c1 < 128 ? (NIBBLE[c1] as number) : -1;
    const lo = c2 < 128 ? (NIBBLE[c2] as number) : -1;
    if (hi < 0 || lo < 0) throw new TypeError("invalid hex string");
    out[i] = (hi << 4) | lo;
  }
  return out;
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function encode64(b: Uint8Array, alphabet: string, pad: boolean): string {
  let s = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + alphabet[n & 63]!;
  }
  const rest = b.length - i;
  if (rest === 1) {
    const n = (b[i] as number) << 16;
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + (pad ? "==" : "");
  } else if (rest === 2) {
    const n = ((b[i] as number) << 16) | ((b[i + 1] as number) << 8);
    s += alphabet[n >> 18]! + alphabet[(n >> 12) & 63]! + alphabet[(n >> 6) & 63]! + (pad ? "=" : "");
  }
  return s;
}

/** base64url without padding (RFC 7515 / JWK), platform independent. */
export function toBase64Url(b: Uint8Array): string {
  return encode64(b, B64URL, false);
}

/** Standard padded base64 (RFC 4648 §4), platform independent. */
export function toBase64(b: Uint8Array): string {
  return encode64(b, B64, true);
}

const B64URL_INV: Int16Array = /* @__PURE__ */ (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64URL.length; i++) t[B64URL.charCodeAt(i)] = i;
  t["+".charCodeAt(0)] = 62;
  t["/".charCodeAt(0)] = 63;
  return t;
})();

/** Decodes base64url (or base64), padding optional. */
export function fromBase64Url(s: string): Uint8Array {
  const clean = s.replace(/=+$/, "");
  const out = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < clean.length; i++) {
    const c = clean.charCodeAt(i);
    const v = c < 128 ? (B64URL_INV[c] as number) : -1;
    if (v < 0) throw new TypeError("invalid base64url");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

/** Decodes base64 (or base64url), padding optional: the same decoder as `fromBase64Url`. */
export function fromBase64(s: string): Uint8Array {
  return fromBase64Url(s);
}

// ---------------------------------------------------------------------------
// PKCS#8 wrappers for RFC 8410 keys (Ed25519, Ed448, X25519, X448).
// ---------------------------------------------------------------------------

/** RFC 8410 OIDs (last byte of 1.3.101.x). */
export const RFC8410_OID = { X25519: 0x6e, X448: 0x6f, Ed25519: 0x70, Ed448: 0x71 } as const;
export type Rfc8410Alg = keyof typeof RFC8410_OID;

/** PKCS#8 OneAsymmetricKey v1 prefix for a raw RFC 8410 private key of `len` bytes. */
export function pkcs8Prefix(alg: Rfc8410Alg, len: number): Uint8Array {
  // SEQ { INTEGER 0, SEQ { OID 1.3.101.x }, OCTET STRING { OCTET STRING key } }
  return Uint8Array.of(
    0x30,
    len + 14,
    0x02,
    0x01,
    0x00,
    0x30,
    0x05,
    0x06,
    0x03,
    0x2b,
    0x65,
    RFC8410_OID[alg],
    0x04,
    len + 2,
    0x04,
    len,
  );
}

/** Wraps a raw RFC 8410 private key as PKCS#8 DER (for WebCrypto importKey). */
export function wrapPkcs8(alg: Rfc8410Alg, raw: Uint8Array): Uint8Array {
  return concatBytes(pkcs8Prefix(alg, raw.length), raw);
}

/**
 * The raw key of a PKCS#8 DER RFC 8410 private key of `len` bytes in the minimal form `wrapPkcs8`
 * writes (what WebCrypto exports), as a copy; undefined for any other encoding (e.g. one that
 * carries the public key as well).
 */
export function unwrapPkcs8(alg: Rfc8410Alg, der: Uint8Array, len: number): Uint8Array | undefined {
  if (der.length !== len + 16) return undefined;
  const prefix = pkcs8Prefix(alg, len);
  for (let i = 0; i < 16; i++) if (der[i] !== prefix[i]) return undefined;
  return der.slice(16);
}

/**
 * Normalises an EdDSA signing key to its raw seed. Accepts the raw seed
 * (RFC 8032), a PKCS#8 v1 encoding of it (48 bytes for Ed25519, as some
 * providers emit it) and, for Ed25519, the 64-byte seed||pub form.
 */
export function edSeed(alg: "Ed25519" | "Ed448", key: Uint8Array): Uint8Array {
  const n = alg === "Ed25519" ? 32 : 57;
  if (key.length === n) return key;
  const raw = unwrapPkcs8(alg, key, n);
  if (raw !== undefined) return raw;
  if (alg === "Ed25519" && key.length === 64) return key.subarray(0, 32);
  throw new RangeError(`${alg}: unsupported signing key encoding (${key.length} bytes)`);
}

// ---------------------------------------------------------------------------
// ECDSA signature encodings: RFC 9420 Section 5.1.2 uses the TLS 1.3 DER
// (ECDSA-Sig-Value, RFC 3279) form; WebCrypto uses IEEE P1363 r||s.
// ---------------------------------------------------------------------------

function derLength(n: number): Uint8Array {
  return n < 0x80 ? Uint8Array.of(n) : Uint8Array.of(0x81, n);
}

function derUint(x: Uint8Array): Uint8Array {
  let i = 0;
  while (i < x.length - 1 && x[i] === 0) i++;
  const v = x.subarray(i);
  const pad = (v[0] as number) & 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + v.length);
  out[0] = 0x02;
  out[1] = pad + v.length;
  out.set(v, 2 + pad);
  return out;
}

/** IEEE P1363 (r||s) to DER ECDSA-Sig-Value. */
export function p1363ToDer(sig: Uint8Array): Uint8Array {
  if (sig.length % 2 !== 0 || sig.length === 0) throw new RangeError("invalid P1363 signature");
  const h = sig.length / 2;
  const r = derUint(sig.subarray(0, h));
  const s = derUint(sig.subarray(h));
  return concatBytes(Uint8Array.of(0x30), derLength(r.length + s.length), r, s);
}

/**
 * Strict DER ECDSA-Sig-Value to P1363 r||s with `n`-byte halves.
 * Returns undefined for anything that is not minimal DER.
 */
export function derToP1363(der: Uint8Array, n: number): Uint8Array | undefined {
  let p = 0;
  const byte = (): number => {
    if (p >= der.length) throw new RangeError("truncated");
    return der[p++] as number;
  };
  const len = (): number => {
    const b = byte();
    if (b < 0x80) return b;
    if (b !== 0x81) throw new RangeError("unsupported length");
    const l = byte();
    if (l < 0x80) throw new RangeError("non-minimal length");
    return l;
  };
  const int = (): Uint8Array => {
    if (byte() !== 0x02) throw new RangeError("expected INTEGER");
    const l = len();
    if (l === 0 || p + l > der.length) throw new RangeError("bad INTEGER length");
    let v = der.subarray(p, p + l);
    p += l;
    if ((v[0] as number) & 0x80) throw new RangeError("negative INTEGER");
    if (v[0] === 0 && v.length > 1) {
      if (!((v[1] as number) & 0x80)) throw new RangeError("non-minimal INTEGER");
      v = v.subarray(1);
    }
    if (v.length > n) throw new RangeError("INTEGER too large");
    return v;
  };
  try {
    if (byte() !== 0x30) return undefined;
    const l = len();
    if (p + l !== der.length) return undefined;
    const r = int();
    const s = int();
    if (p !== der.length) return undefined;
    const out = new Uint8Array(2 * n);
    out.set(r, n - r.length);
    out.set(s, 2 * n - s.length);
    return out;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// SEC 1 ECPrivateKey (RFC 5915): the scalar and the public point.
// ---------------------------------------------------------------------------

/** Reads one DER TLV at `off`: [tag, value start, value end]. */
function tlv(der: Uint8Array, off: number): [number, number, number] {
  const tag = der[off];
  let len = der[off + 1];
  if (tag === undefined || len === undefined) throw new RangeError("truncated DER");
  let p = off + 2;
  if (len & 0x80) {
    const nb = len & 0x7f;
    if (nb < 1 || nb > 2) throw new RangeError("unsupported DER length");
    len = 0;
    for (let i = 0; i < nb; i++) len = (len << 8) | (der[p++] as number);
  }
  if (p + len > der.length) throw new RangeError("truncated DER");
  return [tag, p, p + len];
}

/**
 * Extracts `privateKey` and the optional `publicKey` from a DER
 * ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING,
 * [0] parameters OPTIONAL, [1] publicKey BIT STRING OPTIONAL }.
 */
export function parseSec1PrivateKey(der: Uint8Array): { d: Uint8Array; pub: Uint8Array | undefined } {
  const [seqTag, start, end] = tlv(der, 0);
  if (seqTag !== 0x30) throw new RangeError("ECPrivateKey: expected SEQUENCE");
  const [vTag, vs, ve] = tlv(der, start);
  if (vTag !== 0x02 || ve - vs !== 1 || der[vs] !== 1)
    throw new RangeError("ECPrivateKey: expected version 1");
  const [dTag, ds, de] = tlv(der, ve);
  if (dTag !== 0x04) throw new RangeError("ECPrivateKey: expected OCTET STRING");
  let pub: Uint8Array | undefined;
  for (let p = de; p < end;) {
    const [t, s, e] = tlv(der, p);
    if (t === 0xa1) {
      const [bt, bs, be] = tlv(der, s);
      if (bt !== 0x03 || der[bs] !== 0) throw new RangeError("ECPrivateKey: bad publicKey BIT STRING");
      pub = der.subarray(bs + 1, be);
    }
    p = e;
  }
  return { d: der.subarray(ds, de), pub };
}
