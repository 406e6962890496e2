/**
 * A fast `node:crypto` CryptoProvider covering the RFC 9420 cipher suites
 * 1..7 (Section 17.1).
 *
 * Everything runs synchronously on OpenSSL under the async interface of
 * ./types.ts; the synchronous twins (`digestSync`, `expandSync`, `signSync`,
 * `verifySync`, `generateRawKeyPairSync`) are exposed for the hot paths.
 * Key objects are cached by their raw bytes (small LRUs), and raw keys are
 * imported through JWK, which is an order of magnitude cheaper than PKCS#8
 * DER decoding in Node 20.
 *
 * Node 20 caveat: never JWK-export a KeyObject made by generateKeyPairSync.
 * ExportJWK holds the key's mutex while allocating V8 strings; if a GC then
 * finalizes the (already garbage) KeyGenJob that produced the key, its
 * destructor takes the same mutex and the process deadlocks. So X25519/X448
 * and EdDSA keys are drawn from the CSPRNG and imported via JWK (no
 * KeyGenJob), and generated ECDSA keys are exported as SEC1 DER, which does
 * not hit the bug (test/mls/crypto/node-keygen-gc.test.ts).
 * @module
 */
import {
  ECDH,
  type CipherGCMTypes,
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  randomFillSync,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
} from "node:crypto";
import * as nodeCrypto from "node:crypto";
import { CryptoError } from "../../errors.js";
import { compareBytes, edSeed, i2osp, isAllZero, leftPad, parseSec1PrivateKey } from "./bytes.js";
import { memo } from "../memo.js";
import { ArrayIdentityCache, LruCache, bytesKey } from "./lru.js";
import {
  AEADS,
  AEAD_TAG,
  ECDSA,
  HASH_SIZE,
  KDFS,
  type KemParams,
  type SyncDigestHash,
  type SyncExpandKdf,
  hpkeSuiteId,
  kemParams,
  kemSuiteId,
  ecdsaScalar,
  labelPrefix,
  ownHpkeKey,
} from "./suites.js";
import type {
  AeadAlgorithm,
  CiphersuiteImpl,
  CiphersuiteParams,
  CryptoProvider,
  HashAlgorithm,
  HpkeAlgorithm,
  OwnSignatureCheck,
  PrivateKey,
  PublicKey,
  Rng,
  SignatureAlgorithm,
  SyncKeygenHpke,
  SyncSignature,
} from "./types.js";

// ---------------------------------------------------------------------------
// Byte plumbing
// ---------------------------------------------------------------------------

/** Plain Uint8Array view of a Buffer (callers and tests expect Uint8Array, not Buffer). */
function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function buf(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function b64u(b: Uint8Array): string {
  return buf(b).toString("base64url");
}

function fromB64u(s: string | undefined): Uint8Array {
  if (s === undefined) throw new CryptoError("JWK export without key material");
  return u8(Buffer.from(s, "base64url"));
}

const NODE_HASH: Readonly<Record<HashAlgorithm, string>> = {
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
};

// Node validates only that the JWK `x` of an OKP private key is a string;
// the public key is always recomputed from `d`. A placeholder is enough.
const JWK_X_PLACEHOLDER = "AA";

// ---------------------------------------------------------------------------
// Hash, HMAC, HKDF (RFC 5869)
// ---------------------------------------------------------------------------

function hmac(alg: string, key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac(alg, key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HKDF-Expand with the info given in parts (avoids concatenation). */
function hkdfExpand(
  alg: string,
  hLen: number,
  prk: Uint8Array,
  info: readonly Uint8Array[],
  len: number,
): Uint8Array {
  if (len > 255 * hLen) throw new CryptoError("HKDF-Expand: output too long");
  if (len <= hLen) {
    const h = createHmac(alg, prk);
    for (const p of info) h.update(p);
    h.update(ONE);
    const t = h.digest();
    return u8(len === hLen ? t : t.subarray(0, len));
  }
  const out = new Uint8Array(len);
  let prev: Buffer | undefined;
  for (let i = 1, off = 0; off < len; i++) {
    const h = createHmac(alg, prk);
    if (prev !== undefined) h.update(prev);
    for (const p of info) h.update(p);
    h.update(Uint8Array.of(i));
    prev = h.digest();
    out.set(prev.subarray(0, Math.min(hLen, len - off)), off);
    off += hLen;
  }
  return out;
}
const ONE = Uint8Array.of(1);

/**
 * One-shot `crypto.hash` (Node ≥ 20.12): no Hash object per call (about 1.5 µs instead of 2.3 µs
 * for a short SHA-256); `createHash` where it is missing.
 */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: "buffer") => Buffer }).hash;

function makeHash(alg: HashAlgorithm): SyncDigestHash {
  const name = NODE_HASH[alg];
  const digestSync =
    oneShotHash !== undefined
      ? (data: Uint8Array): Uint8Array => u8(oneShotHash(name, data, "buffer"))
      : (data: Uint8Array): Uint8Array => u8(createHash(name).update(data).digest());
  return {
    async digest(data) {
      return digestSync(data);
    },
    digestSync,
    async mac(key, data) {
      return u8(hmac(name, key, data));
    },
    async verifyMac(key, mac, data) {
      const expected = hmac(name, key, data);
      return mac.length === expected.length && timingSafeEqual(expected, mac);
    },
  };
}

function makeKdf(alg: HashAlgorithm): SyncExpandKdf {
  const name = NODE_HASH[alg];
  const size = HASH_SIZE[alg];
  return {
    async extract(salt, ikm) {
      return u8(hmac(name, salt, ikm));
    },
    async expand(prk, info, len) {
      return hkdfExpand(name, size, prk, [info], len);
    },
    expandSync(prk, info, len) {
      return hkdfExpand(name, size, prk, [info], len);
    },
    size,
  };
}

// A pool of CSPRNG output: one randomFillSync per 4 KiB instead of one per key.
// Each byte is handed out once; the pool is refilled when exhausted.
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolOff = POOL_SIZE;

/** `n` fresh random bytes from node:crypto's CSPRNG (returned as an independent copy). */
function random(n: number): Uint8Array {
  if (n > POOL_SIZE / 4) return u8(randomBytes(n));
  if (poolOff + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOff = 0;
  }
  const out = new Uint8Array(n);
  out.set(pool.subarray(poolOff, poolOff + n));
  pool.fill(0, poolOff, poolOff + n);
  poolOff += n;
  return out;
}

const rng: Rng = {
  randomBytes(n) {
    return random(n);
  },
};

// ---------------------------------------------------------------------------
// AEAD (RFC 9180 Section 7.3)
// ---------------------------------------------------------------------------

const NODE_AEAD: Readonly<Record<AeadAlgorithm, string>> = {
  AES128GCM: "aes-128-gcm",
  AES256GCM: "aes-256-gcm",
  CHACHA20POLY1305: "chacha20-poly1305",
};

interface AeadImpl {
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array | undefined, pt: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array | undefined, ct: Uint8Array): Uint8Array;
}

function makeAead(alg: AeadAlgorithm): AeadImpl {
  // The GCM typing is shared by chacha20-poly1305 (same setAAD/getAuthTag API).
  const name = NODE_AEAD[alg] as CipherGCMTypes;
  const { nK, nN } = AEADS[alg];
  const check = (key: Uint8Array, nonce: Uint8Array): void => {
    if (key.length !== nK || nonce.length !== nN) throw new CryptoError(`${alg}: bad key or nonce length`);
  };
  return {
    seal(key, nonce, aad, pt) {
      check(key, nonce);
      const c = createCipheriv(name, key, nonce, { authTagLength: AEAD_TAG });
      if (aad !== undefined && aad.length > 0) c.setAAD(aad);
      const body = c.update(pt);
      const fin = c.final();
      const out = new Uint8Array(body.length + fin.length + AEAD_TAG);
      out.set(body, 0);
      out.set(fin, body.length);
      out.set(c.getAuthTag(), body.length + fin.length);
      return out;
    },
    open(key, nonce, aad, ct) {
      check(key, nonce);
      if (ct.length < AEAD_TAG) throw new CryptoError(`${alg}: ciphertext too short`);
      const d = createDecipheriv(name, key, nonce, { authTagLength: AEAD_TAG });
      d.setAuthTag(ct.subarray(ct.length - AEAD_TAG));
      if (aad !== undefined && aad.length > 0) d.setAAD(aad);
      const body = d.update(ct.subarray(0, ct.length - AEAD_TAG));
      let fin: Buffer;
      try {
        fin = d.final();
      } catch {
        throw new CryptoError(`${alg}: authentication failed`);
      }
      if (fin.length === 0) return u8(body);
      return u8(Buffer.concat([body, fin]));
    },
  };
}

// ---------------------------------------------------------------------------
// Key object caches (keyed by raw key bytes)
// ---------------------------------------------------------------------------

const privateKeyObjects = new LruCache<KeyObject>(256);
const publicKeyObjects = new LruCache<KeyObject>(1024);

/** Drops every cached KeyObject (e.g. after a logout, or in tests). */
export function clearNodeKeyCaches(): void {
  privateKeyObjects.clear();
  publicKeyObjects.clear();
  signingKeyByArray.clear();
  publicKeyByArray.clear();
}

type OkpCurve = "X25519" | "X448" | "Ed25519" | "Ed448";
type EcCurve = "P-256" | "P-384" | "P-521";
const NODE_EC: Readonly<Record<EcCurve, string>> = {
  "P-256": "prime256v1",
  "P-384": "secp384r1",
  "P-521": "secp521r1",
};

/** Imports a raw OKP private key (uncached). */
function okpImport(crv: OkpCurve, d: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: "OKP", crv, d: b64u(d), x: JWK_X_PLACEHOLDER }, format: "jwk" });
}

/** KeyObjects of stored keys by the identity of their arrays (see `ArrayIdentityCache`). */
const signingKeyByArray = new ArrayIdentityCache<KeyObject>();
const publicKeyByArray = new ArrayIdentityCache<KeyObject>();

/** Cached OKP private KeyObject for raw key bytes. */
function okpPrivate(crv: OkpCurve, d: Uint8Array): KeyObject {
  return memo(privateKeyObjects, bytesKey(crv, d), () => okpImport(crv, d));
}

/** The KeyObject of an EdDSA signing key as stored (raw seed, or a PKCS#8 / 64-byte form). */
function okpSigningKey(alg: "Ed25519" | "Ed448", signKey: Uint8Array): KeyObject {
  return signingKeyByArray.getOrSet(alg, signKey, () => okpPrivate(alg, edSeed(alg, signKey)));
}

function okpPublic(crv: OkpCurve, x: Uint8Array): KeyObject {
  return publicKeyByArray.getOrSet(crv, x, () =>
    memo(publicKeyObjects, bytesKey(crv, x), () =>
      createPublicKey({ key: { kty: "OKP", crv, x: b64u(x) }, format: "jwk" }),
    ),
  );
}

/** Public keys of cached OKP signing KeyObjects (`verifyOwnSync`). */
const okpPublicOf = new WeakMap<KeyObject, Uint8Array>();

/**
 * Raw public key of an imported OKP private KeyObject: its JWK carries `x`
 * (one native call, no extra KeyObject). Safe: the key was imported, not
 * generated (see module doc).
 */
function okpPublicBytes(ko: KeyObject): Uint8Array {
  return fromB64u(ko.export({ format: "jwk" }).x);
}

/** Uncompressed SEC1 point for an EC scalar. */
function ecPublicBytes(curve: EcCurve, d: Uint8Array): Uint8Array {
  const e = createECDH(NODE_EC[curve]);
  e.setPrivateKey(d);
  return u8(e.getPublicKey());
}

function ecPrivate(curve: EcCurve, n: number, d: Uint8Array, pub?: Uint8Array): KeyObject {
  const id = bytesKey(curve, d);
  let ko = privateKeyObjects.get(id);
  if (ko === undefined) {
    const p = pub ?? ecPublicBytes(curve, d);
    ko = createPrivateKey({
      key: { kty: "EC", crv: curve, d: b64u(d), x: b64u(p.subarray(1, 1 + n)), y: b64u(p.subarray(1 + n)) },
      format: "jwk",
    });
    privateKeyObjects.set(id, ko);
  }
  return ko;
}

function ecPublic(curve: EcCurve, n: number, pub: Uint8Array): KeyObject {
  const id = bytesKey(curve, pub);
  let ko = publicKeyObjects.get(id);
  if (ko === undefined) {
    let p = pub;
    if (p.length === n + 1 && (p[0] === 2 || p[0] === 3)) {
      p = u8(ECDH.convertKey(p, NODE_EC[curve], undefined, undefined, "uncompressed") as Buffer);
    }
    if (p.length !== 2 * n + 1 || p[0] !== 4) throw new CryptoError(`${curve}: bad public key encoding`);
    ko = createPublicKey({
      key: { kty: "EC", crv: curve, x: b64u(p.subarray(1, 1 + n)), y: b64u(p.subarray(1 + n)) },
      format: "jwk",
    });
    publicKeyObjects.set(id, ko);
  }
  return ko;
}

// ---------------------------------------------------------------------------
// Signatures (RFC 9420 Section 5.1.2; ECDSA signatures DER-encoded)
// ---------------------------------------------------------------------------

function makeSignature(alg: SignatureAlgorithm): SyncSignature & Partial<OwnSignatureCheck> {
  switch (alg) {
    case "Ed25519":
    case "Ed448": {
      const seedLen = alg === "Ed25519" ? 32 : 57;
      const sigLen = alg === "Ed25519" ? 64 : 114;
      const signSync = (signKey: Uint8Array, message: Uint8Array): Uint8Array =>
        u8(nodeSign(null, message, okpSigningKey(alg, signKey)));
      const verifySync = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
        if (signature.length !== sigLen || publicKey.length !== seedLen) return false;
        try {
          return nodeVerify(null, message, okpPublic(alg, publicKey), signature);
        } catch {
          return false;
        }
      };
      // RFC 8032 §5.1.6: EdDSA signing is deterministic, so a signature our own key made is
      // checked by signing again (about half the cost of a verification on OpenSSL) once the
      // key is known to be `publicKey`'s; any mismatch falls back to verifying (same result).
      // Compared in constant time: only "is the valid signature", never a prefix, is learnt.
      const verifyOwnSync = (
        signKey: Uint8Array,
        publicKey: Uint8Array,
        message: Uint8Array,
        signature: Uint8Array,
      ): boolean => {
        if (signature.length === sigLen && publicKey.length === seedLen) {
          try {
            const ko = okpSigningKey(alg, signKey);
            let pk = okpPublicOf.get(ko);
            if (pk === undefined) {
              pk = okpPublicBytes(ko);
              okpPublicOf.set(ko, pk);
            }
            if (timingSafeEqual(pk, publicKey) && timingSafeEqual(nodeSign(null, message, ko), signature))
              return true;
          } catch {
            // a malformed key: verify decides
          }
        }
        return verifySync(publicKey, message, signature);
      };
      return {
        signSync,
        verifySync,
        verifyOwnSync,
        async sign(signKey, message) {
          return signSync(signKey, message);
        },
        async verify(publicKey, message, signature) {
          return verifySync(publicKey, message, signature);
        },
        async keygen() {
          const seed = random(seedLen);
          const ko = okpPrivate(alg, seed);
          return { signKey: new Uint8Array(seed), publicKey: okpPublicBytes(ko) };
        },
      };
    }
    case "P256":
    case "P384":
    case "P521": {
      const { curve, hash, n } = ECDSA[alg];
      const digest = NODE_HASH[hash];
      const signSync = (signKey: Uint8Array, message: Uint8Array): Uint8Array => {
        const ko = ecPrivate(curve, n, ecdsaScalar(alg, signKey, n));
        return u8(nodeSign(digest, message, { key: ko, dsaEncoding: "der" }));
      };
      const verifySync = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
        try {
          const ko = ecPublic(curve, n, publicKey);
          return nodeVerify(digest, message, { key: ko, dsaEncoding: "der" }, signature);
        } catch {
          return false;
        }
      };
      return {
        signSync,
        verifySync,
        async sign(signKey, message) {
          return signSync(signKey, message);
        },
        async verify(publicKey, message, signature) {
          return verifySync(publicKey, message, signature);
        },
        async keygen() {
          // generateKeyPairSync + SEC1 DER export is cheaper than scalar -> JWK
          // import (which re-checks the key with another scalar multiplication).
          // DER export of a generated key is not affected by the JWK deadlock.
          const { privateKey } = generateKeyPairSync("ec", { namedCurve: curve });
          const { d, pub } = parseSec1PrivateKey(u8(privateKey.export({ type: "sec1", format: "der" })));
          if (pub === undefined || pub.length !== 2 * n + 1)
            throw new CryptoError(`${alg}: unexpected SEC1 export`);
          const signKey = new Uint8Array(leftPad(d, n));
          privateKeyObjects.set(bytesKey(curve, signKey), privateKey);
          return { signKey, publicKey: new Uint8Array(pub) };
        },
      };
    }
    default:
      throw new CryptoError(`unsupported signature algorithm ${alg}`);
  }
}

// ---------------------------------------------------------------------------
// DHKEM (RFC 9180 Section 4.1) over node:crypto
// ---------------------------------------------------------------------------

/** HPKE private key handle (typed as the opaque `PrivateKey`; only our Hpke looks inside). */
class NodeHpkePrivateKey {
  readonly type = "private";
  #pk: Uint8Array | undefined;
  #ecdh: ECDH | undefined;
  #ko: KeyObject | undefined;
  constructor(
    readonly kem: KemParams,
    readonly sk: Uint8Array,
    pk?: Uint8Array,
    ecdh?: ECDH,
    ko?: KeyObject,
  ) {
    this.#pk = pk;
    this.#ecdh = ecdh;
    this.#ko = ko;
  }
  /** X25519/X448 KeyObject (imported keys go through the LRU, fresh ones are held here). */
  keyObject(): KeyObject {
    this.#ko ??= okpPrivate(this.kem.curve as OkpCurve, this.sk);
    return this.#ko;
  }
  /** ECDH handle for NIST curves. */
  ecdh(): ECDH {
    if (this.#ecdh === undefined) {
      const e = createECDH(NODE_EC[this.kem.curve as EcCurve]);
      try {
        e.setPrivateKey(this.sk);
      } catch {
        throw new CryptoError(`${this.kem.alg}: invalid private key`);
      }
      this.#ecdh = e;
    }
    return this.#ecdh;
  }
  /** SerializePublicKey(pk(sk)). */
  publicBytes(): Uint8Array {
    if (this.#pk === undefined) {
      this.#pk = this.kem.bitmask === 0 ? okpPublicBytes(this.keyObject()) : u8(this.ecdh().getPublicKey());
    }
    return this.#pk;
  }
}

class NodeHpkePublicKey {
  readonly type = "public";
  constructor(
    readonly kem: KemParams,
    readonly pk: Uint8Array,
  ) {}
  keyObject(): KeyObject {
    return okpPublic(this.kem.curve as OkpCurve, this.pk);
  }
}

const asPrivate = (k: PrivateKey, kem: KemParams): NodeHpkePrivateKey =>
  ownHpkeKey(k, NodeHpkePrivateKey, kem, "private");
const asPublic = (k: PublicKey, kem: KemParams): NodeHpkePublicKey =>
  ownHpkeKey(k, NodeHpkePublicKey, kem, "public");

const castPrivate = (k: NodeHpkePrivateKey): PrivateKey => k as unknown as PrivateKey;
const castPublic = (k: NodeHpkePublicKey): PublicKey => k as unknown as PublicKey;

interface Dhkem {
  readonly params: KemParams;
  generate(): NodeHpkePrivateKey;
  derive(ikm: Uint8Array): NodeHpkePrivateKey;
  importPrivate(sk: Uint8Array): NodeHpkePrivateKey;
  importPublic(pk: Uint8Array): NodeHpkePublicKey;
  dh(sk: NodeHpkePrivateKey, pk: NodeHpkePublicKey): Uint8Array;
  /** ExtractAndExpand(dh, kem_context), RFC 9180 Section 4.1. */
  extractAndExpand(dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Uint8Array;
}

function makeDhkem(params: KemParams): Dhkem {
  const hashName = NODE_HASH[params.hash];
  const hLen = HASH_SIZE[params.hash];
  const suite = kemSuiteId(params.id);
  const L_EAE_PRK = labelPrefix(suite, "eae_prk");
  const L_SHARED = labelPrefix(suite, "shared_secret");
  const L_DKP_PRK = labelPrefix(suite, "dkp_prk");
  const L_SK = labelPrefix(suite, "sk");
  const L_CANDIDATE = labelPrefix(suite, "candidate");
  const NSK = i2osp(params.nSk, 2);
  const NSECRET = i2osp(params.nSecret, 2);
  const EMPTY = new Uint8Array(0);
  const isX = params.bitmask === 0;

  const dkpPrk = (ikm: Uint8Array): Uint8Array => u8(hmac(hashName, EMPTY, L_DKP_PRK, ikm));

  return {
    params,
    generate() {
      if (isX) {
        // RFC 9180 Section 7.1: any Nsk random bytes are a valid X25519/X448 secret.
        // Fresh keys skip the LRU: most are exported at once (key packages) or ephemeral.
        const sk = random(params.nSk);
        const ko = okpImport(params.curve as OkpCurve, sk);
        return new NodeHpkePrivateKey(params, sk, okpPublicBytes(ko), undefined, ko);
      }
      const e = createECDH(NODE_EC[params.curve as EcCurve]);
      e.generateKeys();
      return new NodeHpkePrivateKey(
        params,
        leftPad(u8(e.getPrivateKey()), params.nSk),
        u8(e.getPublicKey()),
        e,
      );
    },
    derive(ikm) {
      // RFC 9180 Section 7.1.3 DeriveKeyPair.
      const prk = dkpPrk(ikm);
      if (isX) {
        const sk = hkdfExpand(hashName, hLen, prk, [NSK, L_SK, EMPTY], params.nSk);
        return new NodeHpkePrivateKey(params, sk);
      }
      const order = params.order as Uint8Array;
      for (let counter = 0; counter < 256; counter++) {
        const bytes = hkdfExpand(hashName, hLen, prk, [NSK, L_CANDIDATE, Uint8Array.of(counter)], params.nSk);
        bytes[0] = (bytes[0] as number) & params.bitmask;
        if (!isAllZero(bytes) && compareBytes(bytes, order) < 0) return new NodeHpkePrivateKey(params, bytes);
      }
      throw new CryptoError("DeriveKeyPairError");
    },
    importPrivate(sk) {
      let raw: Uint8Array;
      try {
        raw = isX ? sk : leftPad(sk, params.nSk);
      } catch {
        throw new CryptoError(`${params.alg}: bad private key length`);
      }
      if (raw.length !== params.nSk) throw new CryptoError(`${params.alg}: bad private key length`);
      if (!isX && (isAllZero(raw) || compareBytes(raw, params.order as Uint8Array) >= 0)) {
        throw new CryptoError(`${params.alg}: private key out of range`);
      }
      return new NodeHpkePrivateKey(params, new Uint8Array(raw));
    },
    importPublic(pk) {
      if (pk.length !== params.nPk || (!isX && pk[0] !== 4))
        throw new CryptoError(`${params.alg}: bad public key encoding`);
      // Point validation happens in dh() (OpenSSL rejects off-curve points).
      return new NodeHpkePublicKey(params, new Uint8Array(pk));
    },
    dh(sk, pk) {
      let z: Uint8Array;
      try {
        z = isX
          ? u8(diffieHellman({ privateKey: sk.keyObject(), publicKey: pk.keyObject() }))
          : u8(sk.ecdh().computeSecret(pk.pk));
      } catch (e) {
        if (e instanceof CryptoError) throw e;
        throw new CryptoError(`${params.alg}: DH failed`);
      }
      // RFC 9180 Section 7.1.4: reject the all-zero shared secret.
      if (isAllZero(z)) throw new CryptoError(`${params.alg}: all-zero DH output`);
      return z;
    },
    extractAndExpand(dh, enc, pkR) {
      const eaePrk = hmac(hashName, EMPTY, L_EAE_PRK, dh);
      return hkdfExpand(hashName, hLen, eaePrk, [NSECRET, L_SHARED, enc, pkR], params.nSecret);
    },
  };
}

// ---------------------------------------------------------------------------
// HPKE base mode (RFC 9180 Section 5.1) with single-shot seal/open and the
// secret export interface (Section 5.3).
// ---------------------------------------------------------------------------

function makeHpke(alg: HpkeAlgorithm): SyncKeygenHpke {
  const kem = makeDhkem(kemParams(alg.kem));
  const kdfHash = KDFS[alg.kdf].hash;
  const hashName = NODE_HASH[kdfHash];
  const nH = HASH_SIZE[kdfHash];
  const aeadP = AEADS[alg.aead];
  const aead = makeAead(alg.aead);
  const suite = hpkeSuiteId(kem.params.id, KDFS[alg.kdf].id, aeadP.id);
  const EMPTY = new Uint8Array(0);
  const L_INFO_HASH = labelPrefix(suite, "info_hash");
  const L_SECRET = labelPrefix(suite, "secret");
  const L_KEY = labelPrefix(suite, "key");
  const L_NONCE = labelPrefix(suite, "base_nonce");
  const L_EXP = labelPrefix(suite, "exp");
  const L_SEC = labelPrefix(suite, "sec");
  const NK = i2osp(aeadP.nK, 2);
  const NN = i2osp(aeadP.nN, 2);
  const NH = i2osp(nH, 2);
  // mode_base || psk_id_hash, where psk_id_hash = LabeledExtract("", "psk_id_hash", "") is constant.
  const CTX_HEAD = new Uint8Array(1 + nH);
  CTX_HEAD.set(hmac(hashName, EMPTY, labelPrefix(suite, "psk_id_hash")), 1);

  /** KeySchedule(mode_base, shared_secret, info, "", ""). */
  function schedule(shared: Uint8Array, info: Uint8Array): { secret: Buffer; ctx: Uint8Array[] } {
    const infoHash = hmac(hashName, EMPTY, L_INFO_HASH, info);
    const secret = hmac(hashName, shared, L_SECRET);
    return { secret, ctx: [CTX_HEAD, infoHash] };
  }
  const keyAndNonce = (secret: Buffer, ctx: Uint8Array[]): [Uint8Array, Uint8Array] => [
    hkdfExpand(hashName, nH, secret, [NK, L_KEY, ...ctx], aeadP.nK),
    hkdfExpand(hashName, nH, secret, [NN, L_NONCE, ...ctx], aeadP.nN),
  ];
  const exporterSecret = (secret: Buffer, ctx: Uint8Array[]): Uint8Array =>
    hkdfExpand(hashName, nH, secret, [NH, L_EXP, ...ctx], nH);
  const exportFrom = (expSecret: Uint8Array, exporterContext: Uint8Array, len: number): Uint8Array =>
    hkdfExpand(hashName, nH, expSecret, [i2osp(len, 2), L_SEC, exporterContext], len);

  /** Encap(pkR), RFC 9180 Section 4.1. */
  function encap(pkR: NodeHpkePublicKey): { shared: Uint8Array; enc: Uint8Array } {
    const eph = kem.generate();
    const enc = eph.publicBytes();
    const dh = kem.dh(eph, pkR);
    return { shared: kem.extractAndExpand(dh, enc, pkR.pk), enc };
  }
  /** Decap(enc, skR). */
  function decap(enc: Uint8Array, skR: NodeHpkePrivateKey): Uint8Array {
    const pkE = kem.importPublic(enc);
    const dh = kem.dh(skR, pkE);
    return kem.extractAndExpand(dh, enc, skR.publicBytes());
  }

  return {
    async seal(publicKey, plaintext, info, aad) {
      const { shared, enc } = encap(asPublic(publicKey, kem.params));
      const { secret, ctx } = schedule(shared, info);
      const [key, nonce] = keyAndNonce(secret, ctx);
      return { ct: aead.seal(key, nonce, aad, plaintext), enc };
    },
    async open(privateKey, kemOutput, ciphertext, info, aad) {
      const shared = decap(kemOutput, asPrivate(privateKey, kem.params));
      const { secret, ctx } = schedule(shared, info);
      const [key, nonce] = keyAndNonce(secret, ctx);
      return aead.open(key, nonce, aad, ciphertext);
    },
    async exportSecret(publicKey, exporterContext, length, info) {
      const { shared, enc } = encap(asPublic(publicKey, kem.params));
      const { secret, ctx } = schedule(shared, info);
      return { enc, secret: exportFrom(exporterSecret(secret, ctx), exporterContext, length) };
    },
    async importSecret(privateKey, exporterContext, kemOutput, length, info) {
      const shared = decap(kemOutput, asPrivate(privateKey, kem.params));
      const { secret, ctx } = schedule(shared, info);
      return exportFrom(exporterSecret(secret, ctx), exporterContext, length);
    },
    async importPrivateKey(k) {
      return castPrivate(kem.importPrivate(k));
    },
    async importPublicKey(k) {
      return castPublic(kem.importPublic(k));
    },
    async exportPublicKey(k) {
      return new Uint8Array(asPublic(k, kem.params).pk);
    },
    async exportPrivateKey(k) {
      return new Uint8Array(asPrivate(k, kem.params).sk);
    },
    async encryptAead(key, nonce, aad, plaintext) {
      return aead.seal(key, nonce, aad, plaintext);
    },
    async decryptAead(key, nonce, aad, ciphertext) {
      return aead.open(key, nonce, aad, ciphertext);
    },
    async deriveKeyPair(ikm) {
      const sk = kem.derive(ikm);
      return {
        privateKey: castPrivate(sk),
        publicKey: castPublic(new NodeHpkePublicKey(kem.params, sk.publicBytes())),
      };
    },
    async generateKeyPair() {
      const sk = kem.generate();
      return {
        privateKey: castPrivate(sk),
        publicKey: castPublic(new NodeHpkePublicKey(kem.params, sk.publicBytes())),
      };
    },
    generateRawKeyPairSync() {
      const sk = kem.generate();
      // `sk.sk` is fresh and held by nothing else once `sk` is dropped: no copy.
      return { privateKey: sk.sk, publicKey: new Uint8Array(sk.publicBytes()) };
    },
    keyLength: aeadP.nK,
    nonceLength: aeadP.nN,
  };
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

/** Builds the CiphersuiteImpl for one of the RFC 9420 suites 1..7 (synchronously). */
export function makeNodeCiphersuiteImpl(cs: CiphersuiteParams): CiphersuiteImpl {
  return {
    hash: makeHash(cs.hash),
    kdf: makeKdf(KDFS[cs.hpke.kdf].hash),
    hpke: makeHpke(cs.hpke),
    signature: makeSignature(cs.signature),
    rng,
    name: cs.name,
  };
}

const impls = new Map<string, CiphersuiteImpl>();

/** node:crypto provider (RFC 9420 cipher suites 1..7). */
export const nodeCryptoProvider: CryptoProvider = {
  async getCiphersuiteImpl(cs: CiphersuiteParams): Promise<CiphersuiteImpl> {
    let impl = impls.get(cs.name);
    if (impl === undefined) {
      impl = makeNodeCiphersuiteImpl(cs);
      impls.set(cs.name, impl);
    }
    return impl;
  },
};
