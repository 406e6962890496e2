/**
 * WebCrypto building blocks shared by the WebCrypto provider and its HPKE
 * module: BufferSource narrowing, CSPRNG, hashes and HMAC/HKDF (synchronous, in
 * JavaScript), AEAD and a CryptoKey cache. No `node:` imports (bundled for browsers).
 * @module
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { CryptoError } from "../../errors.js";
import { constantTimeEqual } from "./bytes.js";
import { ArrayIdentityCache, LruCache, bytesKey } from "./lru.js";
import { AEADS, AEAD_TAG, HASH_SIZE } from "./suites.js";
import type { AeadAlgorithm, HashAlgorithm } from "./types.js";
import { hkdfExpandSync, hmacSync, syncHash } from "./web-hash.js";

/** Which X25519/Ed25519 operations use the engine's native WebCrypto. */
export interface Native25519 {
  readonly ed25519: boolean;
  readonly x25519: boolean;
}

// ---------------------------------------------------------------------------
// Byte plumbing for the DOM BufferSource typing
// ---------------------------------------------------------------------------

/** Narrows a Uint8Array to one backed by an ArrayBuffer (copies only for shared memory). */
export function bs(b: Uint8Array): Uint8Array<ArrayBuffer> {
  return b.buffer instanceof ArrayBuffer ? (b as Uint8Array<ArrayBuffer>) : new Uint8Array(b);
}

/** CSPRNG bytes via crypto.getRandomValues (chunked at its 64 KiB limit). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536)
    globalThis.crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  return out;
}

// ---------------------------------------------------------------------------
// Hash, HMAC and HKDF (RFC 5869), synchronous (web-hash.ts)
// ---------------------------------------------------------------------------
// Every SubtleCrypto call is a round trip to the browser's crypto thread (plus an importKey
// per HMAC key), ~20-100 µs each, while the inputs here are a few hundred bytes: hashing them
// synchronously takes 1-7 µs. So the key schedule, secret tree, tree hashes and HPKE's KDF run
// synchronously, and the engine's sync paths (`expandSync`, `digestSync`) apply in browsers too.

/** HMAC/HKDF primitives bound to one hash; reused by the HPKE module. */
export interface WebHmac {
  readonly hash: HashAlgorithm;
  readonly size: number;
  mac(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array>;
  macSync(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
  /** Constant-time HMAC check. */
  verify(key: Uint8Array, mac: Uint8Array, data: Uint8Array): Promise<boolean>;
  expand(prk: Uint8Array, info: readonly Uint8Array[], len: number): Promise<Uint8Array>;
  expandSync(prk: Uint8Array, info: readonly Uint8Array[], len: number): Uint8Array;
  digestSync(data: Uint8Array): Uint8Array;
}

/** HMAC/HKDF over the fastest synchronous `hash` loaded (call `loadWasmHashes()` first to get WebAssembly). */
export function makeWebHmac(hash: HashAlgorithm): WebHmac {
  const size = HASH_SIZE[hash];
  const h = syncHash(hash);
  const macSync = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => hmacSync(h, key, parts);
  const expandSync = (prk: Uint8Array, info: readonly Uint8Array[], len: number): Uint8Array =>
    hkdfExpandSync(h, prk, info, len);
  return {
    hash,
    size,
    macSync,
    async mac(key, ...parts) {
      return macSync(key, ...parts);
    },
    async verify(key, mac, data) {
      return constantTimeEqual(macSync(key, data), mac);
    },
    expandSync,
    async expand(prk, info, len) {
      return expandSync(prk, info, len);
    },
    digestSync: (data) => h.digest([data]),
  };
}

// ---------------------------------------------------------------------------
// AEAD: AES-GCM via WebCrypto, ChaCha20-Poly1305 via @noble/ciphers
// ---------------------------------------------------------------------------

/** Single-shot AEAD used by both the Hpke AEAD methods and HPKE seal/open. */
export interface WebAead {
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array | undefined, pt: Uint8Array): Promise<Uint8Array>;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array | undefined, ct: Uint8Array): Promise<Uint8Array>;
}

export function makeWebAead(subtle: SubtleCrypto, alg: AeadAlgorithm): WebAead {
  const { nK, nN } = AEADS[alg];
  const check = (key: Uint8Array, nonce: Uint8Array): void => {
    if (key.length !== nK || nonce.length !== nN) throw new CryptoError(`${alg}: bad key or nonce length`);
  };
  if (alg === "CHACHA20POLY1305") {
    return {
      async seal(key, nonce, aad, pt) {
        check(key, nonce);
        return chacha20poly1305(key, nonce, aad !== undefined && aad.length > 0 ? aad : undefined).encrypt(
          pt,
        );
      },
      async open(key, nonce, aad, ct) {
        check(key, nonce);
        try {
          return chacha20poly1305(key, nonce, aad !== undefined && aad.length > 0 ? aad : undefined).decrypt(
            ct,
          );
        } catch {
          throw new CryptoError(`${alg}: authentication failed`);
        }
      },
    };
  }
  const params = (nonce: Uint8Array, aad: Uint8Array | undefined): AesGcmParams => {
    const p: AesGcmParams = { name: "AES-GCM", iv: bs(nonce), tagLength: AEAD_TAG * 8 };
    if (aad !== undefined && aad.length > 0) p.additionalData = bs(aad);
    return p;
  };
  const importKey = (key: Uint8Array, usage: KeyUsage): Promise<CryptoKey> =>
    subtle.importKey("raw", bs(key), { name: "AES-GCM" }, false, [usage]);
  return {
    async seal(key, nonce, aad, pt) {
      check(key, nonce);
      return new Uint8Array(
        await subtle.encrypt(params(nonce, aad), await importKey(key, "encrypt"), bs(pt)),
      );
    },
    async open(key, nonce, aad, ct) {
      check(key, nonce);
      const k = await importKey(key, "decrypt");
      try {
        return new Uint8Array(await subtle.decrypt(params(nonce, aad), k, bs(ct)));
      } catch {
        throw new CryptoError(`${alg}: authentication failed`);
      }
    },
  };
}

const keyCache = new LruCache<Promise<CryptoKey>>(512);

/** The CryptoKey last imported from this very array (see `ArrayIdentityCache`). */
const keyByArray = new ArrayIdentityCache<Promise<CryptoKey>>();

/** Imports a CryptoKey once per (tag, bytes); failed imports are not cached. */
export function cachedKey(
  tag: string,
  bytes: Uint8Array,
  make: () => Promise<CryptoKey>,
): Promise<CryptoKey> {
  return keyByArray.getOrSet(tag, bytes, () => {
    const id = bytesKey(tag, bytes);
    let p = keyCache.get(id);
    if (p === undefined) {
      p = make();
      keyCache.set(id, p);
      const mine = p;
      mine.catch(() => {
        if (keyCache.peek(id) === mine) keyCache.delete(id);
        keyByArray.deleteIf(bytes, mine);
      });
    }
    return p;
  });
}

/** Drops all cached CryptoKeys. */
export function clearWebKeyCache(): void {
  keyCache.clear();
  keyByArray.clear();
}
