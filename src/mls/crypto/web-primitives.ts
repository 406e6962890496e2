/**
 * WebCrypto building blocks shared by the WebCrypto provider and its HPKE
 * module: BufferSource narrowing, CSPRNG, HMAC/HKDF, AEAD and a CryptoKey
 * cache. No `node:` imports (bundled for browsers).
 * @module
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { CryptoError } from "../../errors.js";
import { concatBytes } from "./bytes.js";
import { LruCache, bytesKey } from "./lru.js";
import { AEADS, AEAD_TAG, HASH_SIZE } from "./suites.js";
import type { AeadAlgorithm, HashAlgorithm } from "./types.js";

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
// Hash, HMAC and HKDF (RFC 5869) over SubtleCrypto
// ---------------------------------------------------------------------------

/** HMAC/HKDF primitives bound to one hash; reused by the HPKE module. */
export interface WebHmac {
  readonly hash: HashAlgorithm;
  readonly size: number;
  mac(key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array>;
  /** Constant-time HMAC check (SubtleCrypto.verify). */
  verify(key: Uint8Array, mac: Uint8Array, data: Uint8Array): Promise<boolean>;
  expand(prk: Uint8Array, info: readonly Uint8Array[], len: number): Promise<Uint8Array>;
}

// WebCrypto rejects zero-length HMAC keys. HMAC pads keys with zeros to the
// block size, so the empty key and a single zero byte are the same key.
const ZERO_KEY = new Uint8Array(1);

export function makeWebHmac(subtle: SubtleCrypto, hash: HashAlgorithm): WebHmac {
  const size = HASH_SIZE[hash];
  const params: HmacImportParams = { name: "HMAC", hash };
  const importKey = (key: Uint8Array): Promise<CryptoKey> =>
    subtle.importKey("raw", bs(key.length === 0 ? ZERO_KEY : key), params, false, ["sign", "verify"]);
  const sign = async (k: CryptoKey, data: Uint8Array): Promise<Uint8Array> =>
    new Uint8Array(await subtle.sign("HMAC", k, bs(data)));
  return {
    hash,
    size,
    async mac(key, ...parts) {
      return sign(
        await importKey(key),
        parts.length === 1 ? (parts[0] as Uint8Array) : concatBytes(...parts),
      );
    },
    async verify(key, mac, data) {
      return subtle.verify("HMAC", await importKey(key), bs(mac), bs(data));
    },
    async expand(prk, info, len) {
      if (len > 255 * size) throw new CryptoError("HKDF-Expand: output too long");
      const k = await importKey(prk);
      const infoBytes = concatBytes(...info);
      const out = new Uint8Array(len);
      let prev: Uint8Array = new Uint8Array(0);
      for (let i = 1, off = 0; off < len; i++, off += size) {
        prev = await sign(k, concatBytes(prev, infoBytes, Uint8Array.of(i)));
        out.set(prev.subarray(0, Math.min(size, len - off)), off);
      }
      return out;
    },
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

/** Imports a CryptoKey once per (tag, bytes); failed imports are not cached. */
export function cachedKey(
  tag: string,
  bytes: Uint8Array,
  make: () => Promise<CryptoKey>,
): Promise<CryptoKey> {
  const id = bytesKey(tag, bytes);
  let p = keyCache.get(id);
  if (p === undefined) {
    p = make();
    keyCache.set(id, p);
    const mine = p;
    mine.catch(() => {
      if (keyCache.peek(id) === mine) keyCache.delete(id);
    });
  }
  return p;
}

/** Drops all cached CryptoKeys. */
export function clearWebKeyCache(): void {
  keyCache.clear();
}
