/**
 * Interop with Wire's CoreCrypto 10.3.0 (OpenMLS inside, wasm build run in
 * Node via bench/corecrypto.ts): CoreCrypto's key packages (Ed25519 and
 * DER-encoded ECDSA signatures) verify with both of our providers, our
 * KeyPackageRefs (RFC 9420 Section 5.2) match CoreCrypto's, and CoreCrypto
 * parses the key packages our node provider generates. (CoreCrypto's
 * KeyPackage.ref() refuses foreign key packages: "only keypackages provided
 * by CC can generate a reference", so the ref check runs one way only.)
 */
import { beforeAll, describe, expect, test } from "vitest";
import {
  defaultCapabilities,
  defaultLifetime,
  generateKeyPackage,
  getCiphersuiteFromName,
  type CryptoProvider,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import {
  decodeKeyPackage,
  encodeKeyPackage,
  makeKeyPackageRef,
  verifyKeyPackage,
} from "ts-mls/keyPackage.js";
import { verifyLeafNodeSignatureKeyPackage } from "ts-mls/leafNode.js";
import { createCoreCryptoClient, type CoreCryptoClient } from "../../../bench/corecrypto.js";
import { bytesToHex } from "../../../src/mls/crypto/bytes.js";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { webCryptoProvider } from "../../../src/mls/crypto/webcrypto.js";

const PROVIDERS: ReadonlyArray<readonly [string, CryptoProvider]> = [
  ["node", nodeCryptoProvider],
  ["webcrypto", webCryptoProvider],
];

let client: CoreCryptoClient;

beforeAll(async () => {
  client = await createCoreCryptoClient([1, 2, 3, 4, 5, 6, 7]);
}, 60_000);

/** CoreCrypto key packages, one per supported suite. */
async function coreCryptoKeyPackages(): Promise<
  Array<{ suite: number; bytes: Uint8Array; ref: Uint8Array }>
> {
  const out: Array<{ suite: number; bytes: Uint8Array; ref: Uint8Array }> = [];
  for (const suite of client.suites) out.push({ suite, ...(await client.keyPackage(suite)) });
  return out;
}

describe("CoreCrypto 10.3.0 interop", () => {
  test("CoreCrypto supports every RFC 9420 suite except the Ed448 ones", () => {
    expect([...client.suites].sort()).toEqual([1, 2, 3, 5, 7]);
    expect([...client.unsupported.keys()].sort()).toEqual([4, 6]);
  });

  test.each(PROVIDERS)(
    "CoreCrypto key packages verify with the %s provider; refs match",
    async (_name, provider) => {
      const kps = await coreCryptoKeyPackages();
      expect(kps.map((k) => k.suite)).toEqual(client.suites);
      for (const { suite, bytes, ref } of kps) {
        const decoded = decodeKeyPackage(bytes, 0);
        if (decoded === undefined)
          throw new Error(`suite ${suite}: ts-mls cannot decode CoreCrypto's KeyPackage`);
        const kp = decoded[0];
        expect(bytesToHex(encodeKeyPackage(kp))).toBe(bytesToHex(bytes));
        const cs = await provider.getCiphersuiteImpl(getCiphersuiteFromName(kp.cipherSuite));
        expect(getCiphersuiteFromId(suite as CiphersuiteId).name).toBe(kp.cipherSuite);
        if (suite === 2 || suite === 5 || suite === 7)
          expect(kp.signature[0], "ECDSA signature is DER").toBe(0x30);
        expect(await verifyKeyPackage(kp, cs.signature)).toBe(true);
        expect(await verifyLeafNodeSignatureKeyPackage(kp.leafNode, cs.signature)).toBe(true);
        expect(bytesToHex(await makeKeyPackageRef(kp, cs.hash))).toBe(bytesToHex(ref));
        // and our HPKE seals to CoreCrypto's init key (the point/key encoding is accepted)
        const pub = await cs.hpke.importPublicKey(kp.initKey);
        const sealed = await cs.hpke.seal(pub, new Uint8Array(8), new Uint8Array(0));
        expect(sealed.enc.length).toBe(kp.initKey.length);
      }
    },
    60_000,
  );

  test("CoreCrypto parses our key packages byte for byte", async () => {
    for (const suite of client.suites) {
      const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(suite as CiphersuiteId));
      const { publicPackage } = await generateKeyPackage(
        { credentialType: "basic", identity: new TextEncoder().encode("ours") },
        defaultCapabilities(),
        defaultLifetime,
        [],
        cs,
      );
      const bytes = encodeKeyPackage(publicPackage);
      const theirs = new client.cc.KeyPackage(bytes);
      expect(bytesToHex(theirs.serialize())).toBe(bytesToHex(bytes));
    }
  });
});
