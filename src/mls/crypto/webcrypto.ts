/**
 * A WebCrypto CryptoProvider (browsers, workers, Deno, Node's
 * globalThis.crypto), covering the RFC 9420 cipher suites 1..7.
 *
 * WebCrypto does AES-GCM, large SHA-2 digests, ECDH/ECDSA on P-256/384/521 and, where
 * the engine has them, Ed25519/X25519. Small digests, HMAC and HKDF run synchronously (no round
 * trip per call) on hash-wasm's WebAssembly SHA-2, or @noble/hashes without WebAssembly
 * (web-hash.ts). @noble/curves and @noble/ciphers fill
 * the gaps: X448, Ed448, ChaCha20-Poly1305, and Ed25519/X25519 on engines
 * without them. Key formats match the node:crypto provider byte for byte, so
 * keys made by one provider work with the other.
 *
 * This module must not import any `node:` module (it is bundled for browsers).
 * @module
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { ed448 } from "@noble/curves/ed448.js";
import { p256, p384, p521 } from "@noble/curves/nist.js";
import { CryptoError } from "../../errors.js";
import {
  concatBytes,
  derToP1363,
  edSeed,
  fromBase64Url,
  leftPad,
  p1363ToDer,
  toBase64Url,
  wrapPkcs8,
} from "./bytes.js";
import { ECDSA, KDFS, ecdsaScalar } from "./suites.js";
import type {
  CiphersuiteImpl,
  CiphersuiteParams,
  CryptoProvider,
  Rng,
  Signature,
  SignatureAlgorithm,
  SyncDigestHash,
  SyncExpandKdf,
} from "./types.js";
import { bs, cachedKey, makeWebHmac, randomBytes, type Native25519, type WebHmac } from "./web-primitives.js";
import { loadWasmHashes } from "./web-hash.js";
import { makeWebHpke } from "./webcrypto-hpke.js";

export { clearWebKeyCache } from "./web-primitives.js";

const rng: Rng = { randomBytes };

/** Options for {@link createWebCryptoProvider}. */
export interface WebCryptoProviderOptions {
  /** SubtleCrypto to use (default: globalThis.crypto.subtle). */
  readonly subtle?: SubtleCrypto;
  /** Use native WebCrypto Ed25519: `true`, `false` (always @noble/curves) or `"auto"` (default: probe once). */
  readonly nativeEd25519?: boolean | "auto";
  /** Use native WebCrypto X25519: `true`, `false` (always @noble/curves) or `"auto"` (default). */
  readonly nativeX25519?: boolean | "auto";
}

/** Above this size a digest goes to SubtleCrypto (native speed beats the round trip). */
const SUBTLE_DIGEST_MIN = 16 * 1024;

function makeHash(subtle: SubtleCrypto, h: WebHmac): SyncDigestHash {
  return {
    async digest(data) {
      if (data.length < SUBTLE_DIGEST_MIN) return h.digestSync(data);
      return new Uint8Array(await subtle.digest(h.hash, bs(data)));
    },
    digestSync: (data) => h.digestSync(data),
    async mac(key, data) {
      return h.macSync(key, data);
    },
    verifyMac(key, mac, data) {
      return h.verify(key, mac, data);
    },
  };
}

function makeKdf(h: WebHmac): SyncExpandKdf {
  return {
    extract: async (salt, ikm) => h.macSync(salt, ikm),
    expand: async (prk, info, len) => h.expandSync(prk, [info], len),
    expandSync: (prk, info, len) => h.expandSync(prk, [info], len),
    size: h.size,
  };
}

// ---------------------------------------------------------------------------
// Signatures (RFC 9420 Section 5.1.2). Key formats as in node.ts: EdDSA raw
// seeds, ECDSA big-endian scalars; public keys raw (EdDSA) or uncompressed
// SEC1 (ECDSA); ECDSA signatures DER-encoded.
// ---------------------------------------------------------------------------

const NOBLE_EC = { "P-256": p256, "P-384": p384, "P-521": p521 } as const;

function nobleEd(alg: "Ed25519" | "Ed448"): Signature {
  const curve = alg === "Ed25519" ? ed25519 : ed448;
  const seedLen = alg === "Ed25519" ? 32 : 57;
  return {
    async sign(signKey, message) {
      return curve.sign(message, edSeed(alg, signKey));
    },
    async verify(publicKey, message, signature) {
      try {
        // zip215: false = strict RFC 8032 verification, as OpenSSL does.
        return curve.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    },
    async keygen() {
      const signKey = randomBytes(seedLen);
      return { signKey, publicKey: curve.getPublicKey(signKey) };
    },
  };
}

function nativeEd25519(subtle: SubtleCrypto): Signature {
  const privateKey = (seed: Uint8Array): Promise<CryptoKey> =>
    cachedKey("Ed25519/sk", seed, () =>
      subtle.importKey("pkcs8", bs(wrapPkcs8("Ed25519", seed)), { name: "Ed25519" }, false, ["sign"]),
    );
  return {
    async sign(signKey, message) {
      const k = await privateKey(edSeed("Ed25519", signKey));
      return new Uint8Array(await subtle.sign({ name: "Ed25519" }, k, bs(message)));
    },
    async verify(publicKey, message, signature) {
      if (publicKey.length !== 32 || signature.length !== 64) return false;
      try {
        const k = await cachedKey("Ed25519/pk", publicKey, () =>
          subtle.importKey("raw", bs(publicKey), { name: "Ed25519" }, false, ["verify"]),
        );
        return await subtle.verify({ name: "Ed25519" }, k, bs(signature), bs(message));
      } catch {
        return false;
      }
    },
    async keygen() {
      const kp = (await subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
      const jwk = await subtle.exportKey("jwk", kp.privateKey);
      const signKey = fromBase64Url(jwk.d ?? "");
      const publicKey = fromBase64Url(jwk.x ?? "");
      if (signKey.length !== 32 || publicKey.length !== 32)
        throw new CryptoError("Ed25519 keygen: bad JWK export");
      return { signKey, publicKey };
    },
  };
}

function webEcdsa(subtle: SubtleCrypto, alg: "P256" | "P384" | "P521"): Signature {
  const { curve, hash, n } = ECDSA[alg];
  const noble = NOBLE_EC[curve];
  const algo: EcdsaParams = { name: "ECDSA", hash };
  const jwkPrivate = (d: Uint8Array, pub: Uint8Array): JsonWebKey => ({
    kty: "EC",
    crv: curve,
    d: toBase64Url(d),
    x: toBase64Url(pub.subarray(1, 1 + n)),
    y: toBase64Url(pub.subarray(1 + n)),
  });
  const privateKey = (d: Uint8Array, pub?: Uint8Array): Promise<CryptoKey> =>
    cachedKey(`${curve}/ecdsa-sk`, d, () =>
      subtle.importKey(
        "jwk",
        jwkPrivate(d, pub ?? noble.getPublicKey(d, false)),
        { name: "ECDSA", namedCurve: curve },
        false,
        ["sign"],
      ),
    );
  return {
    async sign(signKey, message) {
      const d = ecdsaScalar(alg, signKey, n);
      const raw = new Uint8Array(await subtle.sign(algo, await privateKey(d), bs(message)));
      return p1363ToDer(raw);
    },
    async verify(publicKey, message, signature) {
      const raw = derToP1363(signature, n);
      if (raw === undefined) return false;
      try {
        let pub = publicKey;
        if (pub.length === n + 1) pub = noble.Point.fromBytes(pub).toBytes(false);
        const k = await cachedKey(`${curve}/ecdsa-pk`, pub, () =>
          subtle.importKey("raw", bs(pub), { name: "ECDSA", namedCurve: curve }, false, ["verify"]),
        );
        return await subtle.verify(algo, k, bs(raw), bs(message));
      } catch {
        return false;
      }
    },
    async keygen() {
      const kp = (await subtle.generateKey({ name: "ECDSA", namedCurve: curve }, true, [
        "sign",
        "verify",
      ])) as CryptoKeyPair;
      const jwk = await subtle.exportKey("jwk", kp.privateKey);
      const d = leftPad(fromBase64Url(jwk.d ?? ""), n);
      const publicKey = concatBytes(
        Uint8Array.of(4),
        leftPad(fromBase64Url(jwk.x ?? ""), n),
        leftPad(fromBase64Url(jwk.y ?? ""), n),
      );
      void privateKey(d, publicKey);
      return { signKey: new Uint8Array(d), publicKey };
    },
  };
}

function makeSignature(subtle: SubtleCrypto, alg: SignatureAlgorithm, native: Native25519): Signature {
  switch (alg) {
    case "Ed25519":
      return native.ed25519 ? nativeEd25519(subtle) : nobleEd("Ed25519");
    case "Ed448":
      return nobleEd("Ed448");
    case "P256":
    case "P384":
    case "P521":
      return webEcdsa(subtle, alg);
    default:
      throw new CryptoError(`unsupported signature algorithm ${alg}`);
  }
}

// ---------------------------------------------------------------------------
// Feature detection and provider
// ---------------------------------------------------------------------------

// RFC 8032 Section 7.1 test 1 public key; RFC 7748 Section 6.1 Alice public key.
const ED25519_TEST_PK = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const X25519_TEST_PK = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));
}

async function probe(run: () => Promise<unknown>): Promise<boolean> {
  try {
    await run();
    return true;
  } catch {
    return false;
  }
}

async function detect(subtle: SubtleCrypto, opts: WebCryptoProviderOptions): Promise<Native25519> {
  const want = (o: boolean | "auto" | undefined): boolean | "auto" => o ?? "auto";
  const ed = want(opts.nativeEd25519);
  const x = want(opts.nativeX25519);
  const ed25519 =
    ed === "auto"
      ? await probe(async () => {
          const pk = await subtle.importKey(
            "raw",
            bs(hexBytes(ED25519_TEST_PK)),
            { name: "Ed25519" },
            false,
            ["verify"],
          );
          await subtle.verify({ name: "Ed25519" }, pk, new Uint8Array(64), new Uint8Array(0));
        })
      : ed;
  const x25519 =
    x === "auto"
      ? await probe(async () => {
          await subtle.importKey("raw", bs(hexBytes(X25519_TEST_PK)), { name: "X25519" }, false, []);
        })
      : x;
  return { ed25519, x25519 };
}

/** Creates a WebCrypto-backed provider; native Ed25519/X25519 use is probed on first use. */
export function createWebCryptoProvider(opts: WebCryptoProviderOptions = {}): CryptoProvider {
  let native: Promise<Native25519> | undefined;
  const impls = new Map<string, Promise<CiphersuiteImpl>>();
  const build = async (cs: CiphersuiteParams): Promise<CiphersuiteImpl> => {
    const subtle = opts.subtle ?? globalThis.crypto?.subtle;
    if (subtle === undefined)
      throw new CryptoError("WebCrypto (crypto.subtle) is not available; a secure context is required");
    native ??= detect(subtle, opts);
    const [n] = await Promise.all([native, loadWasmHashes()]);
    const hmacKdf = makeWebHmac(KDFS[cs.hpke.kdf].hash);
    const hmacHash = cs.hash === hmacKdf.hash ? hmacKdf : makeWebHmac(cs.hash);
    return {
      hash: makeHash(subtle, hmacHash),
      kdf: makeKdf(hmacKdf),
      hpke: makeWebHpke(subtle, cs.hpke, n),
      signature: makeSignature(subtle, cs.signature, n),
      rng,
      name: cs.name,
    };
  };
  return {
    getCiphersuiteImpl(cs: CiphersuiteParams): Promise<CiphersuiteImpl> {
      let p = impls.get(cs.name);
      if (p === undefined) {
        p = build(cs);
        impls.set(cs.name, p);
        p.catch(() => impls.delete(cs.name));
      }
      return p;
    },
  };
}

/** The default WebCrypto provider (auto-detects native Ed25519/X25519). */
export const webCryptoProvider: CryptoProvider = createWebCryptoProvider();
