/**
 * Algorithm parameters for the RFC 9420 Section 17.1 cipher suites 1..7,
 * shared by the node:crypto and WebCrypto providers. No platform imports.
 * @module
 */
import { CryptoError } from "../../errors.js";
import { concatBytes, i2osp, leftPad, utf8 } from "./bytes.js";
import type {
  AeadAlgorithm,
  CiphersuiteName,
  CiphersuiteParams,
  HashAlgorithm,
  KdfAlgorithm,
  KemAlgorithm,
  SignatureAlgorithm,
} from "./types.js";

export type { SyncDigestHash, SyncExpandKdf } from "./types.js";

/** RFC 9420 §17.1: the algorithms of cipher suites 1..7, by code point. */
export const CIPHERSUITES: Readonly<Record<1 | 2 | 3 | 4 | 5 | 6 | 7, Readonly<CiphersuiteParams>>> = {
  1: suite(
    "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
    "DHKEM-X25519-HKDF-SHA256",
    "AES128GCM",
    "SHA-256",
    "Ed25519",
  ),
  2: suite(
    "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
    "DHKEM-P256-HKDF-SHA256",
    "AES128GCM",
    "SHA-256",
    "P256",
  ),
  3: suite(
    "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
    "DHKEM-X25519-HKDF-SHA256",
    "CHACHA20POLY1305",
    "SHA-256",
    "Ed25519",
  ),
  4: suite(
    "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
    "DHKEM-X448-HKDF-SHA512",
    "AES256GCM",
    "SHA-512",
    "Ed448",
  ),
  5: suite(
    "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
    "DHKEM-P521-HKDF-SHA512",
    "AES256GCM",
    "SHA-512",
    "P521",
  ),
  6: suite(
    "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
    "DHKEM-X448-HKDF-SHA512",
    "CHACHA20POLY1305",
    "SHA-512",
    "Ed448",
  ),
  7: suite(
    "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
    "DHKEM-P384-HKDF-SHA384",
    "AES256GCM",
    "SHA-384",
    "P384",
  ),
};

function suite(
  name: CiphersuiteName,
  kem: KemAlgorithm,
  aead: AeadAlgorithm,
  hash: HashAlgorithm,
  signature: SignatureAlgorithm,
): CiphersuiteParams {
  const kdf: KdfAlgorithm = `HKDF-${hash.replace("-", "")}` as KdfAlgorithm;
  return Object.freeze({ name, hash, signature, hpke: Object.freeze({ kem, kdf, aead }) });
}

/** Registered suites beyond RFC 9420 (IANA "MLS Cipher Suites"): known by name, not implemented here. */
export const REGISTERED_CIPHERSUITE_NAMES: Readonly<Record<number, CiphersuiteName>> = {
  77: "MLS_128_MLKEM512_AES128GCM_SHA256_Ed25519",
  78: "MLS_128_MLKEM512_CHACHA20POLY1305_SHA256_Ed25519",
  79: "MLS_256_MLKEM768_AES256GCM_SHA384_Ed25519",
  80: "MLS_256_MLKEM768_CHACHA20POLY1305_SHA384_Ed25519",
  81: "MLS_256_MLKEM1024_AES256GCM_SHA512_Ed25519",
  82: "MLS_256_MLKEM1024_CHACHA20POLY1305_SHA512_Ed25519",
  83: "MLS_256_XWING_AES256GCM_SHA512_Ed25519",
  84: "MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519",
  85: "MLS_256_MLKEM1024_AES256GCM_SHA512_MLDSA87",
  86: "MLS_256_MLKEM1024_CHACHA20POLY1305_SHA512_MLDSA87",
  87: "MLS_256_XWING_AES256GCM_SHA512_MLDSA87",
  88: "MLS_256_XWING_CHACHA20POLY1305_SHA512_MLDSA87",
};

/** The §17.1 parameters of suite `id`, or undefined outside 1..7. */
export function ciphersuiteParams(id: number): Readonly<CiphersuiteParams> | undefined {
  return Object.hasOwn(CIPHERSUITES, id) ? CIPHERSUITES[id as keyof typeof CIPHERSUITES] : undefined;
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
 * `k` as one of this provider's own HPKE key objects for `kem` (keys travel as opaque
 * `PublicKey`/`PrivateKey` values); a key from another provider or suite is a `CryptoError`.
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
