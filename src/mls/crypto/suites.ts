/**
 * Algorithm parameters for the RFC 9420 Section 17.1 cipher suites 1..7,
 * shared by the node:crypto and WebCrypto providers. No platform imports.
 * @module
 */
import type {
  AeadAlgorithm,
  Hash,
  HashAlgorithm,
  Kdf,
  KdfAlgorithm,
  KemAlgorithm,
  SignatureAlgorithm,
} from "ts-mls";
import { CryptoError } from "ts-mls/mlsError.js";
import { concatBytes, i2osp, leftPad, utf8 } from "./bytes.js";

/**
 * A `Kdf` whose HKDF-Expand also runs synchronously, as node:crypto's HMAC does. The key
 * schedule uses it for the secret tree (RFC 9420 §9), where a promise per HMAC would cost
 * about as much as the HMAC itself. WebCrypto's HMAC is asynchronous: that provider has none.
 */
export interface SyncExpandKdf extends Kdf {
  expandSync(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

/** A `Hash` whose digest also runs synchronously (node:crypto): used for tree hashes (§7.8). */
export interface SyncDigestHash extends Hash {
  digestSync(data: Uint8Array): Uint8Array;
}

/** Hash output sizes (Nh). */
export const HASH_SIZE: Readonly<Record<HashAlgorithm, number>> = {
  "SHA-256": 32,
  "SHA-384": 48,
  "SHA-512": 64,
};

export type DhCurve = "X25519" | "X448" | "P-256" | "P-384" | "P-521";

/** DHKEM parameters, RFC 9180 Section 7.1 (Table 2). */
export interface KemParams {
  readonly alg: KemAlgorithm;
  readonly id: number;
  readonly curve: DhCurve;
  /** The KEM's own KDF (may differ from the HPKE KDF in general). */
  readonly hash: HashAlgorithm;
  readonly nSecret: number;
  readonly nPk: number;
  readonly nSk: number;
  /** DeriveKeyPair bitmask for NIST curves (RFC 9180 Section 7.1.3); 0 for X curves. */
  readonly bitmask: number;
  /** Group order, big-endian, left-padded to nSk (NIST curves only). */
  readonly order?: Uint8Array;
}

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// SEC 2 / FIPS 186-4 group orders.
const P256_N = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_N =
  "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const P521_N =
  "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" +
  "fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";

export const KEMS: Readonly<Partial<Record<KemAlgorithm, KemParams>>> = {
  "DHKEM-P256-HKDF-SHA256": {
    alg: "DHKEM-P256-HKDF-SHA256",
    id: 0x10,
    curve: "P-256",
    hash: "SHA-256",
    nSecret: 32,
    nPk: 65,
    nSk: 32,
    bitmask: 0xff,
    order: hex(P256_N),
  },
  "DHKEM-P384-HKDF-SHA384": {
    alg: "DHKEM-P384-HKDF-SHA384",
    id: 0x11,
    curve: "P-384",
    hash: "SHA-384",
    nSecret: 48,
    nPk: 97,
    nSk: 48,
    bitmask: 0xff,
    order: hex(P384_N),
  },
  "DHKEM-P521-HKDF-SHA512": {
    alg: "DHKEM-P521-HKDF-SHA512",
    id: 0x12,
    curve: "P-521",
    hash: "SHA-512",
    nSecret: 64,
    nPk: 133,
    nSk: 66,
    bitmask: 0x01,
    order: hex(P521_N),
  },
  "DHKEM-X25519-HKDF-SHA256": {
    alg: "DHKEM-X25519-HKDF-SHA256",
    id: 0x20,
    curve: "X25519",
    hash: "SHA-256",
    nSecret: 32,
    nPk: 32,
    nSk: 32,
    bitmask: 0,
  },
  "DHKEM-X448-HKDF-SHA512": {
    alg: "DHKEM-X448-HKDF-SHA512",
    id: 0x21,
    curve: "X448",
    hash: "SHA-512",
    nSecret: 64,
    nPk: 56,
    nSk: 56,
    bitmask: 0,
  },
};

/** HPKE KDF identifiers, RFC 9180 Section 7.2. */
export const KDFS: Readonly<Record<KdfAlgorithm, { readonly id: number; readonly hash: HashAlgorithm }>> = {
  "HKDF-SHA256": { id: 0x0001, hash: "SHA-256" },
  "HKDF-SHA384": { id: 0x0002, hash: "SHA-384" },
  "HKDF-SHA512": { id: 0x0003, hash: "SHA-512" },
};

/** HPKE AEAD identifiers and sizes, RFC 9180 Section 7.3. */
export const AEADS: Readonly<
  Record<AeadAlgorithm, { readonly id: number; readonly nK: number; readonly nN: number }>
> = {
  AES128GCM: { id: 0x0001, nK: 16, nN: 12 },
  AES256GCM: { id: 0x0002, nK: 32, nN: 12 },
  CHACHA20POLY1305: { id: 0x0003, nK: 32, nN: 12 },
};
export const AEAD_TAG = 16;

export type SupportedSignature = Exclude<SignatureAlgorithm, "ML-DSA-87">;

/** ECDSA parameters per RFC 9420 Section 5.1.1 (scheme <-> curve + hash). */
export const ECDSA: Readonly<
  Record<
    "P256" | "P384" | "P521",
    { readonly curve: "P-256" | "P-384" | "P-521"; readonly hash: HashAlgorithm; readonly n: number }
  >
> = {
  P256: { curve: "P-256", hash: "SHA-256", n: 32 },
  P384: { curve: "P-384", hash: "SHA-384", n: 48 },
  P521: { curve: "P-521", hash: "SHA-512", n: 66 },
};

/** RFC 9180 Section 4: suite_id for the KEM ("KEM" || I2OSP(kem_id, 2)). */
export function kemSuiteId(kemId: number): Uint8Array {
  return concatBytes(utf8("KEM"), i2osp(kemId, 2));
}

/** RFC 9180 Section 5.1: suite_id for HPKE ("HPKE" || kem_id || kdf_id || aead_id). */
export function hpkeSuiteId(kemId: number, kdfId: number, aeadId: number): Uint8Array {
  return concatBytes(utf8("HPKE"), i2osp(kemId, 2), i2osp(kdfId, 2), i2osp(aeadId, 2));
}

/** "HPKE-v1" || suite_id || label, the fixed prefix of LabeledExtract/LabeledExpand inputs. */
export function labelPrefix(suiteId: Uint8Array, label: string): Uint8Array {
  return concatBytes(utf8("HPKE-v1"), suiteId, utf8(label));
}

/** Resolves the KEM parameters or throws for suites outside RFC 9420's 1..7. */
export function kemParams(alg: KemAlgorithm): KemParams {
  const p = KEMS[alg];
  if (p === undefined)
    throw new Error(`unsupported KEM ${alg}: only the RFC 9420 DHKEM suites 1..7 are implemented`);
  return p;
}

export function isSupportedSignature(alg: SignatureAlgorithm): alg is SupportedSignature {
  return alg !== "ML-DSA-87";
}

/**
 * `k` as one of this provider's own HPKE key objects for `kem` (ts-mls hands keys back as opaque
 * values); a key from another provider or suite is a `CryptoError`.
 */
export function ownHpkeKey<T extends { readonly kem: KemParams }>(
  k: unknown,
  cls: abstract new (...args: never[]) => T,
  kem: KemParams,
  kind: "private" | "public",
): T {
  if (!(k instanceof cls) || k.kem !== kem)
    throw new CryptoError(`HPKE ${kind} key was not created by this provider/suite`);
  return k;
}

/** An ECDSA signing key as the fixed-width scalar `n` bytes long, else `CryptoError`. */
export function ecdsaScalar(alg: string, signKey: Uint8Array, n: number): Uint8Array {
  try {
    return leftPad(signKey, n);
  } catch {
    throw new CryptoError(`${alg}: bad signing key length`);
  }
}
