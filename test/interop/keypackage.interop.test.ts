import { describe, expect, it } from "vitest";
import { Ciphersuite, CoreCrypto, Database, Keypackage, ClientId, Credential } from "../../src/index.js";
import { CC_CLIENT, coreCryptoClient, loadCoreCrypto } from "./corecrypto.js";

const SUITES = [1, 2, 3, 5, 7] as Ciphersuite[];

async function ours(suite: Ciphersuite) {
  const cc = await CoreCrypto.open(await Database.inMemory());
  const ref = await cc.transaction((tx) =>
    tx.addCredential(Credential.basic(suite, ClientId.parse(CC_CLIENT))),
  );
  return cc.transaction((tx) => tx.generateKeypackage(ref));
}

describe.each(SUITES)("key package interop with CoreCrypto 10.3.0, suite %i", (suite) => {
  it("CoreCrypto accepts our key package bytes and serializes them back unchanged", async () => {
    const cc = await loadCoreCrypto();
    const kp = await ours(suite);
    const theirs = new cc.KeyPackage(kp.serialize());
    expect(new Uint8Array(theirs.serialize())).toEqual(kp.serialize());
    // CoreCrypto's ref() only works for its own packages (it throws for foreign ones); ours works for any.
    expect(() => theirs.ref()).toThrow();
    expect(kp.ref().hashRef()).toHaveLength(suite === 5 ? 64 : suite === 7 ? 48 : 32);
  });

  it("a CoreCrypto key package parses in ours, verifies, and has the same ref", async () => {
    const { core, credentialRef } = await coreCryptoClient(CC_CLIENT, suite);
    const theirs = await core.transaction((ctx) => ctx.generateKeyPackage(credentialRef));
    const parsed = Keypackage.deserialize(new Uint8Array(theirs.serialize()));
    await parsed.verify();
    expect(parsed.serialize()).toEqual(new Uint8Array(theirs.serialize()));
    expect(parsed.ref().hashRef()).toEqual(new Uint8Array(theirs.ref().hashRef()));
    expect(parsed.clientId()?.toString()).toBe(CC_CLIENT);
    expect(parsed.ref().isValid()).toBe(true);
  });

  it("our capabilities equal CoreCrypto's except for the suites we add", async () => {
    const { core, credentialRef } = await coreCryptoClient(CC_CLIENT, suite);
    const theirs = Keypackage.deserialize(
      new Uint8Array((await core.transaction((ctx) => ctx.generateKeyPackage(credentialRef))).serialize()),
    );
    const mine = await ours(suite);
    const a = theirs.capabilities();
    const b = mine.capabilities();
    expect(b.ciphersuites.slice(0, a.ciphersuites.length)).toEqual(a.ciphersuites);
    expect(b.ciphersuites.slice(a.ciphersuites.length)).toEqual([4, 6]);
    expect({ ...b, ciphersuites: [] }).toEqual({ ...a, ciphersuites: [] });
    expect(mine.parsed.extensions).toEqual(theirs.parsed.extensions);
    expect(mine.parsed.leafNode.extensions).toEqual(theirs.parsed.leafNode.extensions);
    const span = (k: Keypackage) => k.lifetime().notAfter.getTime() - k.lifetime().notBefore.getTime();
    expect(span(mine)).toBe(span(theirs));
  });
});
