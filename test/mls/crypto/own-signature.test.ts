/**
 * `verifyOwnSync` (node provider, EdDSA): checking a signature made by a key we hold by signing
 * again (RFC 8032 §5.1.6: deterministic) must give exactly `verifySync`'s answer in every case.
 */
import { describe, expect, test } from "vitest";
import { nodeCryptoProvider } from "../../../src/mls/crypto/node.js";
import { ownSignatureCheckOf, type SyncSignature } from "../../../src/mls/crypto/types.js";
import { getCiphersuiteFromId } from "ts-mls/crypto/ciphersuite.js";

const rand = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));

describe.each([
  [1, "Ed25519"],
  [4, "Ed448"],
] as const)("suite %i (%s)", (suite, _name) => {
  test("same answer as verify: valid, tampered, other key, other message, malformed", async () => {
    const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(suite));
    const sig = cs.signature as SyncSignature;
    const own = ownSignatureCheckOf(cs.signature);
    expect(own).toBeDefined();
    const a = await sig.keygen();
    const b = await sig.keygen();
    const msg = rand(200);
    const good = sig.signSync(a.signKey, msg);
    const flipped = Uint8Array.from(good);
    flipped[5] = (flipped[5] as number) ^ 1;
    const cases: [string, Uint8Array, Uint8Array, Uint8Array, Uint8Array][] = [
      ["valid", a.signKey, a.publicKey, msg, good],
      ["flipped signature", a.signKey, a.publicKey, msg, flipped],
      ["other message", a.signKey, a.publicKey, rand(200), good],
      ["our key, their public key and signature", a.signKey, b.publicKey, msg, sig.signSync(b.signKey, msg)],
      ["our key, their public key, our signature", a.signKey, b.publicKey, msg, good],
      ["their key, our public key and signature", b.signKey, a.publicKey, msg, good],
      ["short signature", a.signKey, a.publicKey, msg, good.subarray(1)],
      ["malformed private key", rand(3), a.publicKey, msg, good],
      ["malformed public key", a.signKey, rand(7), msg, good],
    ];
    for (const [name, signKey, publicKey, message, signature] of cases) {
      const want = sig.verifySync(publicKey, message, signature);
      expect([name, own?.verifyOwnSync(signKey, publicKey, message, signature)]).toEqual([name, want]);
    }
    expect(own?.verifyOwnSync(a.signKey, a.publicKey, msg, good)).toBe(true);
    expect(own?.verifyOwnSync(a.signKey, a.publicKey, msg, flipped)).toBe(false);
  });

  test("a key array changed in place (zeroed, reused) signs with its new bytes, not the cached key", async () => {
    const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(suite));
    const sig = cs.signature as SyncSignature;
    const a = await sig.keygen();
    const b = await sig.keygen();
    const msg = rand(100);
    const key = Uint8Array.from(a.signKey);
    const first = sig.signSync(key, msg);
    expect(sig.verifySync(a.publicKey, msg, first)).toBe(true);
    expect(sig.signSync(key, msg)).toEqual(first); // served from the cache: same key, same signature
    key.set(b.signKey);
    const second = sig.signSync(key, msg);
    expect(sig.verifySync(b.publicKey, msg, second)).toBe(true);
    expect(sig.verifySync(a.publicKey, msg, second)).toBe(false);
    key.fill(0);
    expect(sig.signSync(key, msg)).not.toEqual(second);
  });
});

test("ECDSA suites keep the plain verify (no own-signature shortcut)", async () => {
  const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(2));
  expect(ownSignatureCheckOf(cs.signature)).toBeUndefined();
});
