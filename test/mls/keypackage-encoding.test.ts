import { describe, expect, it } from "vitest";
import { decodeKeyPackage, encodeKeyPackage, signKeyPackage, verifyKeyPackage } from "ts-mls/keyPackage.js";
import { signLeafNodeKeyPackage, verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { Ciphersuite, ClientId, Credential } from "../../src/index.js";
import { buildKeypackage, leafCapabilities } from "../../src/mls/keypackage.js";
import { suiteImpl } from "../../src/mls/suite.js";

const ALL = [1, 2, 3, 4, 5, 6, 7] as Ciphersuite[];
const clientId = ClientId.parse("3c4a8bd6-9b53-4c2f-8f36-4c8f8e5c5b1a:4d2a@wire.com");

describe.each(ALL)("key package encoding, suite %i", (suite) => {
  it.each([false, true])("lastResort=%s: the engine decodes, re-encodes identically and verifies both signatures", async (lastResort) => {
    const cred = Credential.basic(suite, clientId);
    const built = await buildKeypackage({
      ciphersuite: suite,
      credential: cred.encoded,
      signaturePublicKey: cred.publicKey,
      signaturePrivateKey: cred.signaturePrivateKey(),
      notBefore: 1_700_000_000,
      notAfter: 1_707_261_200,
      lastResort,
    });
    const decoded = decodeKeyPackage(built.bytes, 0);
    expect(decoded?.[1]).toBe(built.bytes.length);
    const kp = decoded![0];
    expect(encodeKeyPackage(kp)).toEqual(built.bytes);
    const cs = await suiteImpl(suite);
    expect(await verifyLeafNodeSignatureKeyPackage(kp.leafNode, cs.signature)).toBe(true);
    expect(await verifyKeyPackage(kp, cs.signature)).toBe(true);
    expect(kp.leafNode.lifetime).toEqual({ notBefore: 1_700_000_000n, notAfter: 1_707_261_200n });
    expect(kp.leafNode.capabilities).toEqual(leafCapabilities(lastResort));
    expect(kp.extensions.map((e) => e.extensionType)).toEqual(lastResort ? [10] : []);
    expect(kp.initKey).toEqual(built.initPublicKey);
    expect(kp.leafNode.hpkePublicKey).toEqual(built.encryptionPublicKey);
    expect(await cs.hpke.exportPublicKey(await cs.hpke.importPublicKey(built.initPublicKey))).toEqual(built.initPublicKey);

    // Ed25519/Ed448 signatures are deterministic: ts-mls's own signer must produce the very same bytes.
    if ([1, 3, 4, 6].includes(suite)) {
      const { signature: _l, ...leafTbs } = kp.leafNode;
      const leafNode = await signLeafNodeKeyPackage(leafTbs, cred.signaturePrivateKey(), cs.signature);
      const { signature: _k, ...tbs } = kp;
      const again = await signKeyPackage({ ...tbs, leafNode }, cred.signaturePrivateKey(), cs.signature);
      expect(encodeKeyPackage(again)).toEqual(built.bytes);
    }
  });
});
