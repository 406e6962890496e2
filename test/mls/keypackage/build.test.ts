/**
 * src/mls/keypackage/build.ts: byte identity with the previous builder (src/mls/keypackage.ts)
 * for the same keys, the synchronous and asynchronous paths agree, and ts-mls (as an oracle
 * only) decodes, re-encodes and verifies what we build.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeKeyPackage,
  encodeKeyPackage as tsEncode,
  verifyKeyPackage as tsVerify,
} from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { buildKeypackage as oldBuild } from "../../../src/mls/keypackage.js";
import { useCryptoProvider } from "../../../src/mls/suite.js";
import { encode } from "../../../src/mls/codec/index.js";
import { writeCredential } from "../../../src/mls/credential/codec.js";
import { makeKeyPackageRef } from "../../../src/mls/crypto/labels.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { ciphersuiteImpl } from "../../../src/mls/crypto/select.js";
import type {
  CiphersuiteImpl,
  CryptoProvider,
  PrivateKey,
  PublicKey,
} from "../../../src/mls/crypto/types.js";
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
 * "signature" is a hash of key and message: deterministic for every suite, so two builders
 * given the same calls must produce the same bytes.
 */
async function scripted(
  suite: number,
  seeds: number[],
): Promise<{ cs: CiphersuiteImpl; provider: CryptoProvider }> {
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
  return { cs: syncCs, provider: { getCiphersuiteImpl: async () => cs } };
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
    "lastResort=%s: byte-identical to the previous builder for the same keys",
    async (lastResort) => {
      const input = await inputFor(suite, lastResort);
      const { cs, provider } = await scripted(suite, [7, 9]);
      useCryptoProvider(provider);
      let old;
      try {
        old = await oldBuild({ ...input, ciphersuite: suite as 1 });
      } finally {
        useCryptoProvider(undefined);
      }
      const ours = buildKeyPackageSync(cs, input);
      expect(ours).toBeDefined();
      expect(ours!.bytes).toEqual(old.bytes);
      expect(ours!.ref).toEqual(old.ref);
      expect(ours!.initPublicKey).toEqual(old.initPublicKey);
      expect(ours!.initPrivateKey).toEqual(old.initPrivateKey);
      expect(ours!.encryptionPublicKey).toEqual(old.encryptionPublicKey);
      expect(ours!.encryptionPrivateKey).toEqual(old.encryptionPrivateKey);
      // The asynchronous path (a provider without synchronous primitives) writes the same bytes.
      const { cs: asyncOnly } = await scripted(suite, [7, 9]);
      const { generateRawKeyPairSync: _g, ...hpke } = asyncOnly.hpke as typeof asyncOnly.hpke & {
        generateRawKeyPairSync: unknown;
      };
      const viaAsync = await buildKeyPackage({ ...asyncOnly, hpke }, input);
      expect(viaAsync.bytes).toEqual(old.bytes);
      expect(viaAsync.ref).toEqual(old.ref);
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
