/**
 * The crypto interfaces of the engine: what a cipher suite (RFC 9420 §5.1, §17.1) offers to the
 * protocol code, and what a provider (node:crypto, WebCrypto, or the application's) implements.
 *
 * The method shapes are unchanged from the previous engine's on purpose: a provider written for
 * earlier releases (`useCryptoProvider`) still fits, and the tests can hand our providers to the
 * MLS library they use as a differential oracle. No platform imports.
 * @module
 */

/** Hash functions of the RFC 9420 suites. */
export type HashAlgorithm = "SHA-256" | "SHA-384" | "SHA-512";

/** HPKE KDFs, RFC 9180 §7.2. */
export type KdfAlgorithm = "HKDF-SHA256" | "HKDF-SHA384" | "HKDF-SHA512";

/** HPKE AEADs, RFC 9180 §7.3. */
export type AeadAlgorithm = "AES128GCM" | "CHACHA20POLY1305" | "AES256GCM";

/**
 * HPKE KEMs. Our providers implement the DHKEMs of suites 1..7; the post-quantum names are
 * listed so that a provider for the later IANA suites fits the same interface.
 */
export type KemAlgorithm =
  | "DHKEM-P256-HKDF-SHA256"
  | "DHKEM-X25519-HKDF-SHA256"
  | "DHKEM-X448-HKDF-SHA512"
  | "DHKEM-P521-HKDF-SHA512"
  | "DHKEM-P384-HKDF-SHA384"
  | "ML-KEM-512"
  | "ML-KEM-768"
  | "ML-KEM-1024"
  | "X-Wing";

/** Signature schemes (RFC 9420 §5.1.2; ECDSA ones named by their curve). */
export type SignatureAlgorithm = "Ed25519" | "Ed448" | "P256" | "P384" | "P521" | "ML-DSA-87";

/** The three HPKE algorithms of a suite (RFC 9180 §5). */
export interface HpkeAlgorithm {
  kem: KemAlgorithm;
  kdf: KdfAlgorithm;
  aead: AeadAlgorithm;
}

/**
 * An HPKE public key as a provider hands it out: an opaque handle that only the provider that
 * made it can use (ours are plain objects typed this way; see `ownHpkeKey`).
 */
export type PublicKey = CryptoKey & { type: "public" };

/** An HPKE private key handle (opaque, provider-specific). */
export type PrivateKey = CryptoKey & { type: "private" };

/** The suite's hash: Hash, and HMAC as the MAC (RFC 9420 §5.1). */
export interface Hash {
  digest(data: Uint8Array): Promise<Uint8Array>;
  mac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array>;
  /** Constant-time check of `mac` over `data`. */
  verifyMac(key: Uint8Array, mac: Uint8Array, data: Uint8Array): Promise<boolean>;
}

/** The suite's KDF (HKDF, RFC 5869); `size` is Nh. */
export interface Kdf {
  extract(salt: Uint8Array, ikm: Uint8Array): Promise<Uint8Array>;
  expand(prk: Uint8Array, info: Uint8Array, len: number): Promise<Uint8Array>;
  size: number;
}

/** HPKE base mode (RFC 9180 §5.1), the secret export interface (§5.3), and the bare AEAD. */
export interface Hpke {
  open(
    privateKey: PrivateKey,
    kemOutput: Uint8Array,
    ciphertext: Uint8Array,
    info: Uint8Array,
    aad?: Uint8Array,
  ): Promise<Uint8Array>;
  seal(
    publicKey: PublicKey,
    plaintext: Uint8Array,
    info: Uint8Array,
    aad?: Uint8Array,
  ): Promise<{ ct: Uint8Array; enc: Uint8Array }>;
  importPrivateKey(k: Uint8Array): Promise<PrivateKey>;
  importPublicKey(k: Uint8Array): Promise<PublicKey>;
  exportPublicKey(k: PublicKey): Promise<Uint8Array>;
  exportPrivateKey(k: PrivateKey): Promise<Uint8Array>;
  encryptAead(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array | undefined,
    plaintext: Uint8Array,
  ): Promise<Uint8Array>;
  decryptAead(
    key: Uint8Array,
    nonce: Uint8Array,
    aad: Uint8Array | undefined,
    ciphertext: Uint8Array,
  ): Promise<Uint8Array>;
  exportSecret(
    publicKey: PublicKey,
    exporterContext: Uint8Array,
    length: number,
    info: Uint8Array,
  ): Promise<{ enc: Uint8Array; secret: Uint8Array }>;
  importSecret(
    privateKey: PrivateKey,
    exporterContext: Uint8Array,
    kemOutput: Uint8Array,
    length: number,
    info: Uint8Array,
  ): Promise<Uint8Array>;
  deriveKeyPair(ikm: Uint8Array): Promise<{ privateKey: PrivateKey; publicKey: PublicKey }>;
  generateKeyPair(): Promise<{ privateKey: PrivateKey; publicKey: PublicKey }>;
  /** Nk and Nn of the AEAD. */
  keyLength: number;
  nonceLength: number;
}

/** The suite's signature scheme; keys are raw bytes (see signatureKeys.ts for the formats). */
export interface Signature {
  sign(signKey: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  keygen(): Promise<{ publicKey: Uint8Array; signKey: Uint8Array }>;
}

/** A CSPRNG. */
export interface Rng {
  randomBytes(n: number): Uint8Array;
}

/**
 * Registered MLS cipher suite names (IANA "MLS Cipher Suites"). RFC 9420 defines 1..7, the only
 * ones our providers implement; the rest are listed so that other providers fit.
 */
export type CiphersuiteName =
  | "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"
  | "MLS_128_DHKEMP256_AES128GCM_SHA256_P256"
  | "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
  | "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"
  | "MLS_256_DHKEMP521_AES256GCM_SHA512_P521"
  | "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448"
  | "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
  | "MLS_128_MLKEM512_AES128GCM_SHA256_Ed25519"
  | "MLS_128_MLKEM512_CHACHA20POLY1305_SHA256_Ed25519"
  | "MLS_256_MLKEM768_AES256GCM_SHA384_Ed25519"
  | "MLS_256_MLKEM768_CHACHA20POLY1305_SHA384_Ed25519"
  | "MLS_256_MLKEM1024_AES256GCM_SHA512_Ed25519"
  | "MLS_256_MLKEM1024_CHACHA20POLY1305_SHA512_Ed25519"
  | "MLS_256_XWING_AES256GCM_SHA512_Ed25519"
  | "MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519"
  | "MLS_256_MLKEM1024_AES256GCM_SHA512_MLDSA87"
  | "MLS_256_MLKEM1024_CHACHA20POLY1305_SHA512_MLDSA87"
  | "MLS_256_XWING_AES256GCM_SHA512_MLDSA87"
  | "MLS_256_XWING_CHACHA20POLY1305_SHA512_MLDSA87";

/** What a provider is asked to implement: a suite's algorithms (RFC 9420 §17.1 table). */
export interface CiphersuiteParams {
  hash: HashAlgorithm;
  hpke: HpkeAlgorithm;
  signature: SignatureAlgorithm;
  name: CiphersuiteName;
}

/** One cipher suite, implemented. */
export interface CiphersuiteImpl {
  hash: Hash;
  hpke: Hpke;
  signature: Signature;
  kdf: Kdf;
  rng: Rng;
  name: CiphersuiteName;
}

/** A source of cipher suite implementations (node:crypto, WebCrypto, or the application's). */
export interface CryptoProvider {
  getCiphersuiteImpl(cs: CiphersuiteParams): Promise<CiphersuiteImpl>;
}

// ---------------------------------------------------------------------------
// Optional synchronous twins. node:crypto computes everything synchronously under the async
// interface; hot paths (secret tree, tree hash, key package build) use these when present.
// The WebCrypto provider has the digest and KDF twins (in JavaScript), not the others.
// ---------------------------------------------------------------------------

/** A `Kdf` whose HKDF-Expand also runs synchronously (RFC 9420 §9: one HMAC per secret). */
export interface SyncExpandKdf extends Kdf {
  expandSync(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

/** A `Hash` whose digest also runs synchronously: tree hashes (§7.8), refs (§5.2). */
export interface SyncDigestHash extends Hash {
  digestSync(data: Uint8Array): Uint8Array;
}

/** A `Signature` that also signs and verifies synchronously. */
export interface SyncSignature extends Signature {
  signSync(signKey: Uint8Array, message: Uint8Array): Uint8Array;
  /** False for a bad signature or a malformed key, like `verify`. */
  verifySync(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * A `Signature` that checks a signature made by a key we hold more cheaply than `verify`: for a
 * deterministic scheme (EdDSA, RFC 8032 §5.1.6), Sign(signKey, message) equal to `signature`
 * with pk(signKey) equal to `publicKey` implies Verify(publicKey, message, signature); anything
 * else falls back to `verify`. The result is always `verify`'s.
 */
export interface OwnSignatureCheck {
  verifyOwnSync(
    signKey: Uint8Array,
    publicKey: Uint8Array,
    message: Uint8Array,
    signature: Uint8Array,
  ): boolean;
}

/** The provider's `OwnSignatureCheck`, when it has one. */
export function ownSignatureCheckOf(signature: Signature): OwnSignatureCheck | undefined {
  const s = signature as Partial<OwnSignatureCheck>;
  return typeof s.verifyOwnSync === "function" ? (s as OwnSignatureCheck) : undefined;
}

/** An `Hpke` that also generates a key pair synchronously, as raw serialized keys (RFC 9180 §7.1). */
export interface SyncKeygenHpke extends Hpke {
  /** A fresh key pair: SerializePrivateKey(sk) and SerializePublicKey(pk). The caller owns and zeroes `privateKey`. */
  generateRawKeyPairSync(): { privateKey: Uint8Array; publicKey: Uint8Array };
}

/** True when the provider's KDF has `expandSync`. */
export function isSyncExpandKdf(kdf: Kdf): kdf is SyncExpandKdf {
  return typeof (kdf as Partial<SyncExpandKdf>).expandSync === "function";
}

/** True when the provider's hash has `digestSync`. */
export function isSyncDigestHash(hash: Hash): hash is SyncDigestHash {
  return typeof (hash as Partial<SyncDigestHash>).digestSync === "function";
}

/** The provider's synchronous HKDF-Expand, bound, when it has one. */
export function syncExpandOf(kdf: Kdf): SyncExpandKdf["expandSync"] | undefined {
  const k = kdf as Partial<SyncExpandKdf>;
  return typeof k.expandSync === "function" ? k.expandSync.bind(kdf) : undefined;
}

/** The provider's synchronous digest, bound, when it has one. */
export function syncDigestOf(hash: Hash): SyncDigestHash["digestSync"] | undefined {
  const h = hash as Partial<SyncDigestHash>;
  return typeof h.digestSync === "function" ? h.digestSync.bind(hash) : undefined;
}

/** The provider's synchronous signature, when it has one. */
export function syncSignatureOf(signature: Signature): SyncSignature | undefined {
  const s = signature as Partial<SyncSignature>;
  return typeof s.signSync === "function" && typeof s.verifySync === "function"
    ? (signature as SyncSignature)
    : undefined;
}

/** The provider's synchronous raw key pair generation, when it has one. */
export function syncKeygenOf(hpke: Hpke): SyncKeygenHpke | undefined {
  const h = hpke as Partial<SyncKeygenHpke>;
  return typeof h.generateRawKeyPairSync === "function" ? (hpke as SyncKeygenHpke) : undefined;
}
