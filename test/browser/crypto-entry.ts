/**
 * Browser-side half of crypto.browser.test.ts. Bundled by harness.ts and run
 * in headless Chromium; exposes `globalThis.cryptoTest`. Everything it runs is
 * our code (src/mls) on the WebCrypto provider: no other MLS implementation is
 * bundled (test/browser/bundle.test.ts checks).
 */
import { decodeExact, encode } from "../../src/mls/codec/index.js";
import { writeCredential } from "../../src/mls/credential/codec.js";
import { bytesEqual, bytesToHex, hexToBytes } from "../../src/mls/crypto/bytes.js";
import {
  decryptWithLabel,
  deriveSecret,
  deriveTreeSecret,
  encryptWithLabel,
  expandWithLabel,
  makeKeyPackageRef,
  refHash,
  signWithLabel,
  verifyWithLabel,
} from "../../src/mls/crypto/labels.js";
import { ciphersuiteImpl, isNodeRuntime, selectCryptoProvider } from "../../src/mls/crypto/select.js";
import type { CryptoProvider } from "../../src/mls/crypto/types.js";
import { syncHash } from "../../src/mls/crypto/web-hash.js";
import { createWebCryptoProvider, webCryptoProvider } from "../../src/mls/crypto/webcrypto.js";
import { WireFormats } from "../../src/mls/framing/types.js";
import { readMlsMessage, writeMlsMessage } from "../../src/mls/group/codec.js";
import { buildKeyPackage } from "../../src/mls/keypackage/build.js";
import { parseKeyPackage } from "../../src/mls/keypackage/parse.js";
import { verifyKeyPackage } from "../../src/mls/keypackage/validate.js";
import {
  CHECKS_PER_CASE,
  type Check,
  type CryptoBasics,
  type VectorFile,
  runVectorFile,
} from "./vector-checks.js";

export type { Check } from "./vector-checks.js";

const PROVIDERS: Record<string, CryptoProvider> = {
  webcrypto: webCryptoProvider,
  "webcrypto-noble": createWebCryptoProvider({ nativeEd25519: false, nativeX25519: false }),
};

async function check(out: Check[], suite: number, name: string, run: () => Promise<boolean>): Promise<void> {
  try {
    const ok = await run();
    out.push({ suite, name, ok, ...(ok ? {} : { detail: "returned false" }) });
  } catch (e) {
    out.push({ suite, name, ok: false, detail: String((e as Error)?.stack ?? e) });
  }
}

const impl = (p: CryptoProvider, suite: number) => ciphersuiteImpl(suite, p);
const h = hexToBytes;

async function basics(providerName: string): Promise<Check[]> {
  const provider = PROVIDERS[providerName];
  if (provider === undefined) throw new Error(`unknown provider ${providerName}`);
  const res = await fetch("/vectors/crypto-basics.json");
  if (!res.ok) throw new Error(`vectors: HTTP ${res.status}`);
  const vectors = (await res.json()) as CryptoBasics[];
  const out: Check[] = [];
  for (const v of vectors) {
    const cs = await impl(provider, v.cipher_suite);
    const s = v.cipher_suite;
    await check(
      out,
      s,
      "ref_hash",
      async () =>
        bytesToHex(await refHash(v.ref_hash.label, h(v.ref_hash.value), cs.hash)) === v.ref_hash.out,
    );
    const e = v.expand_with_label;
    await check(
      out,
      s,
      "expand_with_label",
      async () =>
        bytesToHex(await expandWithLabel(h(e.secret), e.label, h(e.context), e.length, cs.kdf)) === e.out,
    );
    const d = v.derive_secret;
    await check(
      out,
      s,
      "derive_secret",
      async () => bytesToHex(await deriveSecret(h(d.secret), d.label, cs.kdf)) === d.out,
    );
    const t = v.derive_tree_secret;
    await check(
      out,
      s,
      "derive_tree_secret",
      async () =>
        bytesToHex(await deriveTreeSecret(h(t.secret), t.label, t.generation, t.length, cs.kdf)) === t.out,
    );
    const g = v.sign_with_label;
    await check(out, s, "verify_with_label", () =>
      verifyWithLabel(h(g.pub), g.label, h(g.content), h(g.signature), cs.signature),
    );
    await check(out, s, "sign_with_label", async () =>
      verifyWithLabel(
        h(g.pub),
        g.label,
        h(g.content),
        await signWithLabel(h(g.priv), g.label, h(g.content), cs.signature),
        cs.signature,
      ),
    );
    const x = v.encrypt_with_label;
    await check(out, s, "decrypt_with_label", async () => {
      const priv = await cs.hpke.importPrivateKey(h(x.priv));
      return (
        bytesToHex(
          await decryptWithLabel(priv, x.label, h(x.context), h(x.kem_output), h(x.ciphertext), cs.hpke),
        ) === x.plaintext
      );
    });
    await check(out, s, "encrypt_with_label", async () => {
      const priv = await cs.hpke.importPrivateKey(h(x.priv));
      const r = await encryptWithLabel(
        await cs.hpke.importPublicKey(h(x.pub)),
        x.label,
        h(x.context),
        h(x.plaintext),
        cs.hpke,
      );
      return (
        bytesToHex(await decryptWithLabel(priv, x.label, h(x.context), r.enc, r.ct, cs.hpke)) === x.plaintext
      );
    });
  }
  return out;
}

/**
 * Our key package builder -> MLSMessage encode -> strict decode -> §10.1 verification (both
 * signatures, capabilities, lifetime), KeyPackageRef, and HPKE to the init key.
 */
async function keyPackages(providerName: string): Promise<Check[]> {
  const provider = PROVIDERS[providerName];
  if (provider === undefined) throw new Error(`unknown provider ${providerName}`);
  const out: Check[] = [];
  for (const suite of [1, 2, 3, 4, 5, 6, 7]) {
    await check(out, suite, "key package round trip", async () => {
      const cs = await impl(provider, suite);
      const { signKey, publicKey } = await cs.signature.keygen();
      const now = Math.floor(Date.now() / 1000);
      const identity = new TextEncoder().encode("browser");
      const built = await buildKeyPackage(cs, {
        ciphersuite: suite,
        credential: encode({ credentialType: 1, identity } as const, writeCredential),
        signaturePublicKey: publicKey,
        signaturePrivateKey: signKey,
        notBefore: now - 60,
        notAfter: now + 3600,
        lastResort: false,
      });
      const message = { wireFormat: WireFormats.mls_key_package, keyPackage: parseKeyPackage(built.bytes) };
      const wire = encode(message, writeMlsMessage);
      const back = decodeExact(wire, readMlsMessage);
      if (back.wireFormat !== WireFormats.mls_key_package) return false;
      if (!bytesEqual(encode(back, writeMlsMessage), wire)) return false;
      await verifyKeyPackage(back.keyPackage, {
        now: new Date(now * 1000),
        suiteImpl: (s) => impl(provider, s),
      });
      const ref = await makeKeyPackageRef(wire.subarray(4), cs.hash);
      if (ref.length !== cs.kdf.size || !bytesEqual(ref, built.ref)) return false;
      const info = new TextEncoder().encode("init key check");
      const sealed = await cs.hpke.seal(await cs.hpke.importPublicKey(back.keyPackage.initKey), info, info);
      const opened = await cs.hpke.open(
        await cs.hpke.importPrivateKey(built.initPrivateKey),
        sealed.enc,
        sealed.ct,
        info,
      );
      return bytesEqual(opened, info);
    });
  }
  return out;
}

/**
 * Runs one vector file (served at /vectors/<file>) with the named provider;
 * see vector-checks.ts. Returns the case count so the caller can check
 * checks.length === cases * CHECKS_PER_CASE[file].length.
 */
async function vectorFile(file: string, providerName: string): Promise<{ cases: number; checks: Check[] }> {
  const provider = PROVIDERS[providerName];
  if (provider === undefined) throw new Error(`unknown provider ${providerName}`);
  if (!Object.hasOwn(CHECKS_PER_CASE, file)) throw new Error(`no browser checks for ${file}`);
  const res = await fetch(`/vectors/${file}`);
  if (!res.ok) throw new Error(`${file}: HTTP ${res.status}`);
  const vectors = (await res.json()) as Array<{ cipher_suite: number }>;
  return { cases: vectors.length, checks: await runVectorFile(file as VectorFile, vectors, provider) };
}

async function env(): Promise<{
  isNode: boolean;
  selectedIsWebCrypto: boolean;
  secureContext: boolean;
  nativeEd25519: boolean;
  nativeX25519: boolean;
  wasmSha256: boolean;
}> {
  const subtle = globalThis.crypto.subtle;
  await ciphersuiteImpl(1, webCryptoProvider); // loads the WebAssembly hashes
  const probe = async (f: () => Promise<unknown>) =>
    f().then(
      () => true,
      () => false,
    );
  return {
    isNode: isNodeRuntime(),
    selectedIsWebCrypto: (await selectCryptoProvider()) === webCryptoProvider,
    secureContext: globalThis.isSecureContext,
    nativeEd25519: await probe(() => subtle.generateKey({ name: "Ed25519" }, false, ["sign"])),
    nativeX25519: await probe(() => subtle.generateKey({ name: "X25519" }, false, ["deriveBits"])),
    wasmSha256: syncHash("SHA-256").backend === "wasm",
  };
}

(globalThis as { cryptoTest?: unknown }).cryptoTest = { basics, keyPackages, vectorFile, env };
