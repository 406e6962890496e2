/**
 * src/mls/keypackage/build.ts: the synchronous and asynchronous paths write the same bytes for
 * the same keys, and ts-mls (as an oracle only) decodes, re-encodes and verifies what we build;
 * with deterministic EdDSA, ts-mls's own signer signs to the very same bytes.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeKeyPackage,
  encodeKeyPackage as tsEncode,
  verifyKeyPackage as tsVerify,
} from "ts-mls/keyPackage.js";
import { signKeyPackage } from "ts-mls/keyPackage.js";
import { signLeafNodeKeyPackage, verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { encode } from "../../../src/mls/codec/index.js";
import { writeCredential } from "../../../src/mls/credential/codec.js";
import { makeKeyPackageRef } from "../../../src/mls/crypto/labels.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { ciphersuiteImpl } from "../../../src/mls/crypto/select.js";
import type { CiphersuiteImpl, PrivateKey, PublicKey } from "../../../src/mls/crypto/types.js";
import { createWebCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";
import {
  buildKeyPackage,
  buildKeyPackageSync,
  leafCapabilities,
  type BuildKeyPackageInput,
} from "../../../src/mls/keypackage/build.js";
import { parseKeyPackage } from "../../../src/mls/keypackage/parse.js";
import { verifyKeyPackage } from "../../../src/mls/keypackage/validate.js";
import { NOT_AFTER, NOT_BEFORE, NOW, basic, node } from "./fixtures.js";

const SUITES = [1, 2, 3, 4, 5, 6, 7];

/**
 * A suite whose HPKE key pairs come from a fixed list (derived from fixed seeds) and whose
 * "signature" is a hash of key and message: deterministic for every suite, so two build paths
 * given the same calls must produce the same bytes.
 */
async function scripted(
  suite: number,
  seeds: number[],
): Promise<{ cs: CiphersuiteImpl; raw: { privateKey: Uint8Array; publicKey: Uint8Array }[] }> {
  const real = await node(suite);
  const pairs = await Promise.all(seeds.map((s) => real.hpke.deriveKeyPair(new Uint8Array(32).fill(s))));
  const raw = await Promise.all(
    pairs.map(async (p) => ({
      privateKey: await real.hpke.exportPrivateKey(p.privateKey),
      publicKey: await real.hpke.exportPublicKey(p.publicKey),
    })),
  );
  let async = 0;
  let sync = 0;
  const fakeSign = (key: Uint8Array, message: Uint8Array): Uint8Array =>
    new Uint8Array(createHash("sha512").update(key).update(message).digest());
  const cs: CiphersuiteImpl = {
    ...real,
    hpke: {
      ...real.hpke,
      generateKeyPair: async (): Promise<{ privateKey: PrivateKey; publicKey: PublicKey }> =>
        pairs[async++ % pairs.length]!,
    },
    signature: { ...real.signature, sign: async (k, m) => fakeSign(k, m) },
  };
  // The same keys and signatures through the synchronous interface.
  const syncCs = {
    ...cs,
    hpke: { ...cs.hpke, generateRawKeyPairSync: () => raw[sync++ % raw.length]! },
    signature: { ...cs.signature, signSync: fakeSign, verifySync: () => true },
  };
  return { cs: syncCs, raw };
}

async function inputFor(suite: number, lastResort: boolean): Promise<BuildKeyPackageInput> {
  const { signKey, publicKey } = await (await node(suite)).signature.keygen();
  return {
    ciphersuite: suite,
    credential: encode(basic("3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.com"), writeCredential),
    signaturePublicKey: publicKey,
    signaturePrivateKey: signKey,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    lastResort,
  };
}

describe.each(SUITES)("key package build, suite %i", (suite) => {
  it.each([false, true])(
    "lastResort=%s: the synchronous and asynchronous paths write the same package for the same keys",
    async (lastResort) => {
      const input = await inputFor(suite, lastResort);
      const { cs, raw } = await scripted(suite, [7, 9]);
      const viaSync = buildKeyPackageSync(cs, input);
      expect(viaSync).toBeDefined();
      // init key first, then the leaf's encryption key, each as generated
      expect(viaSync!.initPublicKey).toEqual(raw[0]!.publicKey);
      expect(viaSync!.initPrivateKey).toEqual(raw[0]!.privateKey);
      expect(viaSync!.encryptionPublicKey).toEqual(raw[1]!.publicKey);
      expect(viaSync!.encryptionPrivateKey).toEqual(raw[1]!.privateKey);
      expect(viaSync!.ref).toEqual(await makeKeyPackageRef(viaSync!.bytes, cs.hash));
      const kp = parseKeyPackage(viaSync!.bytes);
      expect(kp.initKey).toEqual(raw[0]!.publicKey);
      expect(kp.leafNode.encryptionKey).toEqual(raw[1]!.publicKey);
      // ts-mls (oracle) re-encodes what it decodes to the same bytes
      expect(tsEncode(decodeKeyPackage(viaSync!.bytes, 0)![0])).toEqual(viaSync!.bytes);
      // The asynchronous path (a provider without synchronous primitives) writes the same bytes.
      const { cs: asyncOnly } = await scripted(suite, [7, 9]);
      const { generateRawKeyPairSync: _g, ...hpke } = asyncOnly.hpke as typeof asyncOnly.hpke & {
        generateRawKeyPairSync: unknown;
      };
      const viaAsync = await buildKeyPackage({ ...asyncOnly, hpke }, input);
      expect(viaAsync).toEqual(viaSync);
    },
  );

  it("real keys: ts-mls decodes, re-encodes identically and verifies both signatures; we verify too", async () => {
    const input = await inputFor(suite, true);
    const cs = await node(suite);
    const built = buildKeyPackageSync(cs, input)!;
    const decoded = decodeKeyPackage(built.bytes, 0);
    expect(decoded?.[1]).toBe(built.bytes.length);
    const kp = decoded![0];
    expect(tsEncode(kp)).toEqual(built.bytes);
    expect(await verifyLeafNodeSignatureKeyPackage(kp.leafNode, cs.signature)).toBe(true);
    expect(await tsVerify(kp, cs.signature)).toBe(true);
    expect(built.ref).toEqual(await makeKeyPackageRef(built.bytes, cs.hash));
    // Ed25519/Ed448 signatures are deterministic: ts-mls's own signer signs to the very same bytes.
    if ([1, 3, 4, 6].includes(suite)) {
      const { signature: _l, ...leafTbs } = kp.leafNode;
      const leafNode = await signLeafNodeKeyPackage(leafTbs, input.signaturePrivateKey, cs.signature);
      const { signature: _k, ...tbs } = kp;
      const again = await signKeyPackage({ ...tbs, leafNode }, input.signaturePrivateKey, cs.signature);
      expect(tsEncode(again)).toEqual(built.bytes);
    }

    const ours = parseKeyPackage(built.bytes);
    expect(ours.leafNode.capabilities).toEqual(leafCapabilities(true));
    expect(ours.leafNode.lifetime).toEqual({ notBefore: BigInt(NOT_BEFORE), notAfter: BigInt(NOT_AFTER) });
    expect(ours.initKey).toEqual(built.initPublicKey);
    expect(ours.leafNode.encryptionKey).toEqual(built.encryptionPublicKey);
    await verifyKeyPackage(ours, { now: NOW, suiteImpl: node });
    // the init private key opens what is sealed to the init key
    const info = Uint8Array.of(1, 2, 3);
    const sealed = await cs.hpke.seal(await cs.hpke.importPublicKey(built.initPublicKey), info, info);
    const opened = await cs.hpke.open(
      await cs.hpke.importPrivateKey(built.initPrivateKey),
      sealed.enc,
      sealed.ct,
      info,
    );
    expect(opened).toEqual(info);
  });

  it("WebCrypto (no synchronous primitives): the package verifies with node:crypto", async () => {
    const web = createWebCryptoProvider();
    const cs = await ciphersuiteImpl(suite, web);
    const input = await inputFor(suite, false);
    expect(buildKeyPackageSync(cs, input)).toBeUndefined();
    const built = await buildKeyPackage(cs, input);
    const kp = parseKeyPackage(built.bytes);
    await verifyKeyPackage(kp, { now: NOW, suiteImpl: (s) => ciphersuiteImpl(s, nodeCryptoProvider) });
    expect(built.ref).toEqual(await makeKeyPackageRef(built.bytes, (await node(suite)).hash));
  });
});
