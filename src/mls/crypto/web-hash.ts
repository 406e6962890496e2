/**
 * Synchronous SHA-2, HMAC (RFC 2104) and HKDF-Expand (RFC 5869) for the WebCrypto provider.
 *
 * The key schedule, secret tree, tree hashes and HPKE's KDF hash a few hundred bytes per call, so
 * they run synchronously on this thread rather than as SubtleCrypto round trips. SHA-256 (suites 1,
 * 2, 3) is hash-wasm's WebAssembly once `loadWasmHashes()` succeeded (about 4× faster than
 * JavaScript on short inputs: an HMAC costs ~2 µs instead of ~7 µs in Chromium; 7 KiB gzipped);
 * SHA-384/512, and SHA-256 without WebAssembly (or under a Content-Security-Policy without
 * 'wasm-unsafe-eval'), are @noble/hashes. Both give the same bytes; HMAC and HKDF are written
 * once, over either.
 * No `node:` imports (bundled for browsers).
 * @module
 */
import { sha256, sha384, sha512 } from "@noble/hashes/sha2.js";
import type { IHasher } from "hash-wasm";
import { CryptoError } from "../../errors.js";
import { bytesEqual } from "./bytes.js";
import type { HashAlgorithm } from "./types.js";

/** One SHA-2 function, synchronous. Not reentrant: each call runs to completion (no awaits). */
export interface SyncHash {
  readonly algorithm: HashAlgorithm;
  /** Input block size B (RFC 2104). */
  readonly blockLen: number;
  /** Output size L. */
  readonly outputLen: number;
  /** Hash of the concatenation of `parts`. */
  digest(parts: readonly Uint8Array[]): Uint8Array;
  /** Overwrite the hash's internal buffers (after hashing secret input). */
  scrub(): void;
  /** "wasm" or "noble" (diagnostics, tests). */
  readonly backend: "wasm" | "noble";
}

const NOBLE = { "SHA-256": sha256, "SHA-384": sha384, "SHA-512": sha512 } as const;

function nobleHash(algorithm: HashAlgorithm): SyncHash {
  const h = NOBLE[algorithm];
  return {
    algorithm,
    blockLen: h.blockLen,
    outputLen: h.outputLen,
    backend: "noble",
    digest(parts) {
      if (parts.length === 1) return h(parts[0] as Uint8Array);
      const x = h.create();
      for (const p of parts) x.update(p);
      return x.digest();
    },
    scrub() {
      // @noble/hashes zeroes its state and buffers after every digest.
    },
  };
}

/** Inputs up to this size are gathered into one buffer: one `update` call (each costs two views). */
const GATHER = 1024;

function wasmHash(algorithm: HashAlgorithm, w: IHasher): SyncHash {
  const zeros = new Uint8Array(w.blockSize);
  const gather = new Uint8Array(GATHER);
  return {
    algorithm,
    blockLen: w.blockSize,
    outputLen: w.digestSize,
    backend: "wasm",
    digest(parts) {
      w.init();
      let total = 0;
      for (const p of parts) total += p.length;
      if (parts.length > 1 && total <= GATHER) {
        let off = 0;
        for (const p of parts) {
          gather.set(p, off);
          off += p.length;
        }
        w.update(gather.subarray(0, total));
        gather.fill(0, 0, total);
      } else for (const p of parts) w.update(p);
      return w.digest("binary");
    },
    scrub() {
      // One block of zeros through the compression function overwrites its message buffer and
      // schedule in the module's memory.
      w.init();
      w.update(zeros);
      w.init();
    },
  };
}

const loaded = new Map<HashAlgorithm, SyncHash>();
let loading: Promise<void> | undefined;

/**
 * Load hash-wasm's SHA-256 once; afterwards `syncHash("SHA-256")` returns it. Never throws: where
 * WebAssembly is unavailable or refused, the hash stays on @noble/hashes.
 */
export function loadWasmHashes(): Promise<void> {
  loading ??= (async () => {
    try {
      // Loaded on first use: a Node.js process on node:crypto never parses it.
      const { createSHA256 } = await import("./web-hash-wasm.js");
      const h = wasmHash("SHA-256", await createSHA256());
      // Known answer (FIPS 180-2 "abc") before trusting the module.
      const abc = new Uint8Array([0x61, 0x62, 0x63]);
      if (bytesEqual(h.digest([abc]), sha256(abc))) loaded.set("SHA-256", h);
    } catch {
      // no WebAssembly here: @noble/hashes it is
    }
  })();
  return loading;
}

/** The fastest synchronous implementation of `algorithm` available now. */
export function syncHash(algorithm: HashAlgorithm): SyncHash {
  return loaded.get(algorithm) ?? nobleHash(algorithm);
}

/** @noble/hashes only (tests compare the backends). */
export function nobleSyncHash(algorithm: HashAlgorithm): SyncHash {
  return nobleHash(algorithm);
}

/** HMAC(key, parts[0] | parts[1] | …) (RFC 2104 Section 2). */
export function hmacSync(h: SyncHash, key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  const B = h.blockLen;
  // Keys longer than B are hashed first; shorter ones are zero-padded to B.
  const k = key.length > B ? h.digest([key]) : key;
  const pad = new Uint8Array(B);
  pad.set(k);
  for (let i = 0; i < B; i++) (pad[i] as number) ^= 0x36;
  const inner = h.digest([pad, ...parts]);
  for (let i = 0; i < B; i++) (pad[i] as number) ^= 0x36 ^ 0x5c;
  const out = h.digest([pad, inner]);
  pad.fill(0);
  inner.fill(0);
  if (k !== key) k.fill(0);
  h.scrub();
  return out;
}

const ONE = Uint8Array.of(1);

/** HKDF-Expand(PRK, info[0] | info[1] | …, L) (RFC 5869 Section 2.3). */
export function hkdfExpandSync(
  h: SyncHash,
  prk: Uint8Array,
  info: readonly Uint8Array[],
  len: number,
): Uint8Array {
  const n = h.outputLen;
  if (!Number.isInteger(len) || len < 0 || len > 255 * n)
    throw new CryptoError("HKDF-Expand: bad output length");
  if (len === 0) return new Uint8Array(0);
  // T(1) = HMAC(PRK, info | 0x01): every MLS secret, key and nonce is one block.
  if (len <= n) {
    const t = hmacSync(h, prk, [...info, ONE]);
    return len === n ? t : t.slice(0, len);
  }
  // T(i) = HMAC(PRK, T(i-1) | info | i)
  const out = new Uint8Array(Math.ceil(len / n) * n);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 1, off = 0; off < len; i++, off += n) {
    const next = hmacSync(h, prk, [t, ...info, Uint8Array.of(i)]);
    t.fill(0);
    out.set(next, off);
    t = next;
  }
  t.fill(0);
  const okm = out.slice(0, len);
  out.fill(0);
  return okm;
}
