/**
 * The WebCrypto provider's fast paths against independent references: SHA-2, HMAC (RFC 2104) and
 * HKDF-Expand (RFC 5869) on both backends (hash-wasm, @noble/hashes) against node:crypto, X25519 public keys on the Edwards curve (RFC 7748)
 * against the RFC's vector and the Montgomery ladder, and key pairs made on either thread
 * against native X25519 agreement.
 */
import { createHash, createHmac, hkdfSync, webcrypto } from "node:crypto";
import { x25519 } from "@noble/curves/ed25519.js";
import { describe, expect, test } from "vitest";
import { bytesToHex, hexToBytes } from "../../../src/mls/crypto/bytes.js";
import { x25519PublicKey } from "../../../src/mls/crypto/webcrypto-hpke.js";
import { makeWebHmac } from "../../../src/mls/crypto/web-primitives.js";
import {
  hkdfExpandSync,
  hmacSync,
  loadWasmHashes,
  nobleSyncHash,
  syncHash,
} from "../../../src/mls/crypto/web-hash.js";
import { createWebCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";
import { getCiphersuiteFromId } from "ts-mls/crypto/ciphersuite.js";

const rand = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));

const HASHES = ["SHA-256", "SHA-384", "SHA-512"] as const;
const nodeName = (h: string): string => h.replace("-", "").toLowerCase();

describe("synchronous SHA-2 and HMAC, WebAssembly and JavaScript backends", () => {
  test("hash-wasm loads (Node has WebAssembly) and the provider uses it", async () => {
    await loadWasmHashes();
    expect(syncHash("SHA-256").backend).toBe("wasm");
    expect(syncHash("SHA-384").backend).toBe("noble");
    expect(nobleSyncHash("SHA-256").backend).toBe("noble");
  });

  for (const alg of HASHES) {
    test(`${alg}: digests and HMACs equal node:crypto's, keys of every length class`, async () => {
      await loadWasmHashes();
      for (const h of [syncHash(alg), nobleSyncHash(alg)]) {
        for (const n of [0, 1, 55, 56, 64, 111, 112, 128, 1000]) {
          const data = rand(n);
          expect(bytesToHex(h.digest([data.subarray(0, 7), data.subarray(7)]))).toBe(
            createHash(nodeName(alg)).update(data).digest("hex"),
          );
        }
        for (const klen of [0, 1, 32, 63, 64, 65, 127, 128, 129, 300]) {
          const key = rand(klen);
          const parts = [rand(13), rand(0), rand(100)];
          const want = createHmac(nodeName(alg), key).update(Buffer.concat(parts)).digest("hex");
          expect(bytesToHex(hmacSync(h, key, parts))).toBe(want);
          // the key is not modified
          expect(key.length).toBe(klen);
        }
      }
    });

    test(`${alg}: HKDF-Expand on both backends equals node:crypto's hkdf`, async () => {
      await loadWasmHashes();
      for (const h of [syncHash(alg), nobleSyncHash(alg)]) {
        for (const len of [1, 32, 48, 64, 65, 200]) {
          const ikm = rand(32);
          const salt = rand(16);
          const info = rand(20);
          const want = bytesToHex(new Uint8Array(hkdfSync(nodeName(alg), ikm, salt, info, len)));
          expect(bytesToHex(hkdfExpandSync(h, hmacSync(h, salt, [ikm]), [info], len))).toBe(want);
        }
      }
    });
  }

  test("HKDF-Expand refuses more than 255 blocks", () => {
    const h = nobleSyncHash("SHA-256");
    expect(() => hkdfExpandSync(h, rand(32), [], 255 * 32 + 1)).toThrow(/output length/);
    expect(hkdfExpandSync(h, rand(32), [], 0)).toHaveLength(0);
  });
});

describe("HKDF-Expand (RFC 5869 Section 2.3)", () => {
  for (const hash of ["SHA-256", "SHA-384", "SHA-512"] as const) {
    test(`${hash}: every length up to two blocks, info in one or several parts`, () => {
      const h = makeWebHmac(hash);
      const node = hash.replace("-", "").toLowerCase();
      for (const len of [1, 12, 16, 31, 32, 33, 48, 63, 64, 65, 100, 128]) {
        const ikm = rand(h.size);
        const salt = rand(h.size);
        const info = [rand(7), rand(0), rand(40)];
        // node's hkdf = Expand(Extract(salt, ikm), info, len), Extract = HMAC(salt, ikm).
        const want = bytesToHex(new Uint8Array(hkdfSync(node, ikm, salt, Buffer.concat(info), len)));
        const prk = h.macSync(salt, ikm);
        expect(bytesToHex(h.expandSync(prk, info, len))).toBe(want);
        expect(bytesToHex(h.expandSync(prk, [Buffer.concat(info)], len))).toBe(want);
      }
    });
  }

  test("RFC 5869 test case 1 (SHA-256, 42 bytes) and its first block", () => {
    const h = makeWebHmac("SHA-256");
    const prk = hexToBytes("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
    const info = hexToBytes("f0f1f2f3f4f5f6f7f8f9");
    const okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    expect(bytesToHex(h.expandSync(prk, [info], 42))).toBe(okm);
    expect(bytesToHex(h.expandSync(prk, [info], 32))).toBe(okm.slice(0, 64));
    expect(bytesToHex(h.expandSync(prk, [info.subarray(0, 3), info.subarray(3)], 16))).toBe(okm.slice(0, 32));
  });
});

describe("X25519 public keys on the Edwards curve (RFC 7748)", () => {
  test("RFC 7748 Section 6.1: Alice's and Bob's public keys", () => {
    const alice = hexToBytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const bob = hexToBytes("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    expect(bytesToHex(x25519PublicKey(alice))).toBe(
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
    );
    expect(bytesToHex(x25519PublicKey(bob))).toBe(
      "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    );
  });

  test("matches the Montgomery ladder on 500 random keys, and edge scalars", () => {
    const keys = Array.from({ length: 500 }, () => rand(32));
    keys.push(
      new Uint8Array(32),
      new Uint8Array(32).fill(255),
      Uint8Array.of(9, ...new Array<number>(31).fill(0)),
    );
    for (const sk of keys) expect(bytesToHex(x25519PublicKey(sk))).toBe(bytesToHex(x25519.getPublicKey(sk)));
  });

  test("refuses a key that is not 32 bytes", () => {
    expect(() => x25519PublicKey(rand(31))).toThrow(/32 bytes/);
  });
});

/** Suite 1 on a WebCrypto provider with the given native primitives (Node's SubtleCrypto by default). */
const webSuite1 = (
  native: { nativeX25519?: boolean; nativeEd25519?: boolean },
  subtle = webcrypto.subtle as unknown as SubtleCrypto,
) => createWebCryptoProvider({ subtle, ...native }).getCiphersuiteImpl(getCiphersuiteFromId(1));

describe("X25519 key pairs of the WebCrypto provider", () => {
  test("pairs made ahead on native X25519 open what is sealed to them", async () => {
    const cs = await webSuite1({ nativeX25519: true });
    const pairs = await Promise.all(Array.from({ length: 12 }, () => cs.hpke.generateKeyPair()));
    // Then one at a time, after the crypto thread had time to make pairs ahead.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pairs.push(await cs.hpke.generateKeyPair());
    }
    for (const kp of pairs) {
      const sk = await cs.hpke.exportPrivateKey(kp.privateKey);
      const pk = await cs.hpke.exportPublicKey(kp.publicKey);
      expect(bytesToHex(pk)).toBe(bytesToHex(x25519.getPublicKey(sk)));
      // Seal to the pair and open with it: the HPKE round trip uses native X25519 agreement.
      const { ct, enc } = await cs.hpke.seal(kp.publicKey, Uint8Array.of(1, 2, 3), new Uint8Array(0));
      const pt = await cs.hpke.open(kp.privateKey, enc, ct, new Uint8Array(0));
      expect([...pt]).toEqual([1, 2, 3]);
    }
  });
});

describe("fresh X25519 pairs when the engine cannot import random private keys", () => {
  const subtle = webcrypto.subtle as unknown as SubtleCrypto;
  const isX25519 = (alg: unknown): boolean => (alg as { name?: string } | undefined)?.name === "X25519";
  /** Node's SubtleCrypto with the PKCS#8 X25519 import refused, or with JWKs lacking `x`. */
  const engine = (
    quirk: "no pkcs8 import" | "jwk without x",
  ): { subtle: SubtleCrypto; generated: () => number } => {
    let generated = 0;
    const wrapped = new Proxy(subtle, {
      get(target, prop) {
        if (prop === "importKey")
          return (format: string, data: unknown, alg: unknown, ...rest: unknown[]) =>
            quirk === "no pkcs8 import" && format === "pkcs8" && isX25519(alg)
              ? Promise.reject(new DOMException("not supported", "NotSupportedError"))
              : (target.importKey as (...a: unknown[]) => Promise<CryptoKey>)(format, data, alg, ...rest);
        if (prop === "exportKey")
          return async (format: string, key: CryptoKey) => {
            const out = await (target.exportKey as (f: string, k: CryptoKey) => Promise<unknown>)(
              format,
              key,
            );
            if (quirk === "jwk without x" && format === "jwk" && isX25519(key.algorithm)) {
              const { x: _x, ...rest } = out as JsonWebKey;
              return rest;
            }
            return out;
          };
        if (prop === "generateKey")
          return (alg: unknown, ...rest: unknown[]) => {
            if (isX25519(alg)) generated++;
            return (target.generateKey as (...a: unknown[]) => Promise<unknown>)(alg, ...rest);
          };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { subtle: wrapped, generated: () => generated };
  };

  test.each(["no pkcs8 import", "jwk without x"] as const)("%s: generateKey makes them", async (quirk) => {
    const e = engine(quirk);
    const cs = await webSuite1({ nativeX25519: true }, e.subtle);
    for (let i = 0; i < 4; i++) {
      const kp = await cs.hpke.generateKeyPair();
      const sk = await cs.hpke.exportPrivateKey(kp.privateKey);
      const pk = await cs.hpke.exportPublicKey(kp.publicKey);
      expect(sk.length).toBe(32);
      expect(bytesToHex(pk)).toBe(bytesToHex(x25519.getPublicKey(sk)));
    }
    expect(e.generated()).toBeGreaterThanOrEqual(4);
  });
});

describe("CryptoKey cache keyed by array", () => {
  test("a signing key array changed in place (zeroed, reused) signs with its new bytes, not the cached key", async () => {
    const cs = await webSuite1({ nativeEd25519: true });
    const a = await cs.signature.keygen();
    const b = await cs.signature.keygen();
    const msg = webcrypto.getRandomValues(new Uint8Array(100));
    const key = Uint8Array.from(a.signKey);
    const first = await cs.signature.sign(key, msg);
    expect(await cs.signature.verify(a.publicKey, msg, first)).toBe(true);
    expect(await cs.signature.sign(key, msg)).toEqual(first); // from the cache
    key.set(b.signKey);
    const second = await cs.signature.sign(key, msg);
    expect(await cs.signature.verify(b.publicKey, msg, second)).toBe(true);
    expect(await cs.signature.verify(a.publicKey, msg, second)).toBe(false);
  });
});
