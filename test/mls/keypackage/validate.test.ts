/**
 * RFC 9420 §10.1 key package validation (src/mls/keypackage/validate.ts, parse.ts): a valid
 * package passes; each negative test changes one field (signing again where the change would
 * otherwise break a signature) and expects exactly the rule it breaks.
 */
import { describe, expect, it } from "vitest";
import { InvalidKeypackageError, type KeypackageRule } from "../../../src/errors.js";
import { Keypackage } from "../../../src/keypackage/keypackage.js";
import { KEYPACKAGE_MAX_SPAN } from "../../../src/keypackage/lifetime.js";
import type { AuthenticationInput } from "../../../src/mls/credential/authentication.js";
import { parseKeyPackage } from "../../../src/mls/keypackage/parse.js";
import type { KeyPackage } from "../../../src/mls/keypackage/types.js";
import { verifyKeyPackage, type VerifyKeyPackageOptions } from "../../../src/mls/keypackage/validate.js";
import {
  NOT_AFTER,
  NOT_BEFORE,
  NOW,
  basic,
  encodeKeyPackage,
  node,
  resign,
  validPackage,
  withLeaf,
  type Fixture,
} from "./fixtures.js";

const options = (extra: Partial<VerifyKeyPackageOptions> = {}): VerifyKeyPackageOptions => ({
  now: NOW,
  suiteImpl: node,
  ...extra,
});

async function expectRule(p: Promise<unknown> | (() => unknown), rule: KeypackageRule): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected rule ${rule}`).toBeInstanceOf(InvalidKeypackageError);
  expect((err as InvalidKeypackageError).rule).toBe(rule);
}

/** Encodes `kp`, parses it again and verifies it: the full path a received package takes. */
const verifyBytes = (kp: KeyPackage, extra?: Partial<VerifyKeyPackageOptions>): Promise<unknown> =>
  verifyKeyPackage(parseKeyPackage(encodeKeyPackage(kp)), options(extra));

describe("§10.1 key package validation: valid packages", () => {
  it.each([1, 2, 3, 4, 5, 6, 7])(
    "suite %i: a fresh package verifies (both providers' signatures)",
    async (suite) => {
      const f = await validPackage(suite, { lastResort: true });
      const v = await verifyKeyPackage(f.kp, options());
      expect(v).toBe(f.kp);
      // the default suiteImpl is the active provider's (node:crypto here)
      await verifyKeyPackage(f.kp, { now: NOW });
    },
  );

  it("default extension types (1..5) need not be listed in capabilities", async () => {
    const f = await validPackage();
    const kp = await resign(
      f,
      { ...f.kp, extensions: [{ extensionType: 1, extensionData: Uint8Array.of(1, 2) }] },
      false,
    );
    await verifyBytes(kp);
  });

  it("the lifetime bounds: valid from not_before, expired at not_after", async () => {
    const f = await validPackage();
    await verifyKeyPackage(f.kp, options({ now: new Date(NOT_BEFORE * 1000) }));
    await verifyKeyPackage(f.kp, options({ now: new Date(NOT_AFTER * 1000 - 1) }));
  });

  it("the authentication service sees the credential, key, suite and context", async () => {
    const f = await validPackage(2);
    const seen: AuthenticationInput[] = [];
    await verifyKeyPackage(
      f.kp,
      options({
        authenticationService: {
          validate: async (input) => {
            seen.push(input);
            return { ok: true };
          },
        },
      }),
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      ciphersuite: 2,
      context: "keypackage",
      credential: f.kp.leafNode.credential,
    });
    expect(seen[0]!.signatureKey).toEqual(f.kp.leafNode.signatureKey);
  });
});

describe("§10.1 key package validation: one rule broken at a time", () => {
  let f: Fixture;
  const fresh = async (): Promise<Fixture> => (f = await validPackage());

  // --- §2.1 parsing ---------------------------------------------------------------------

  it("decode: truncated bytes", async () => {
    await fresh();
    await expectRule(() => parseKeyPackage(f.bytes.subarray(0, f.bytes.length - 1)), "decode");
  });

  it("decode: an optional/enum value outside the RFC (credential type 9)", async () => {
    await fresh();
    const bytes = Uint8Array.from(f.bytes);
    // version(2) suite(2) init_key<V>(1+32) encryption_key<V>(1+32) signature_key<V>(1+32), then the credential type
    const at = 4 + 33 + 33 + 33;
    expect([bytes[at], bytes[at + 1]]).toEqual([0, 1]);
    bytes[at + 1] = 9;
    await expectRule(() => parseKeyPackage(bytes), "decode");
  });

  it("trailing_bytes: one byte after the package", async () => {
    await fresh();
    await expectRule(() => parseKeyPackage(Uint8Array.of(...f.bytes, 0)), "trailing_bytes");
  });

  it("non_minimal_encoding: the init_key length as a 2-byte varint (§2.1.2)", async () => {
    await fresh();
    const len = f.kp.initKey.length;
    const bytes = Uint8Array.of(...f.bytes.subarray(0, 4), 0x40, len, ...f.bytes.subarray(5));
    await expectRule(() => parseKeyPackage(bytes), "non_minimal_encoding");
    await expectRule(() => Keypackage.deserialize(bytes), "non_minimal_encoding");
  });

  // --- §10.1 version and suite ---------------------------------------------------------

  it("version: protocol version 2", async () => {
    await fresh();
    await expectRule(verifyBytes(await resign(f, { ...f.kp, version: 2 }, false)), "version");
  });

  it("version: not the group's", async () => {
    await fresh();
    await expectRule(verifyKeyPackage(f.kp, options({ group: { version: 2, ciphersuite: 1 } })), "version");
  });

  it("ciphersuite: a suite outside the supported list", async () => {
    await fresh();
    await expectRule(verifyBytes(await resign(f, { ...f.kp, ciphersuite: 0x004d }, false)), "ciphersuite");
    await expectRule(verifyKeyPackage(f.kp, options({ supportedCiphersuites: [2, 3] })), "ciphersuite");
  });

  it("ciphersuite: not the group's", async () => {
    await fresh();
    await expectRule(
      verifyKeyPackage(f.kp, options({ group: { version: 1, ciphersuite: 2 } })),
      "ciphersuite",
    );
  });

  // --- §7.3 leaf node ------------------------------------------------------------------

  it("leaf_node_source: update instead of key_package", async () => {
    await fresh();
    const kp = await resign(
      f,
      { ...f.kp, leafNode: { ...f.kp.leafNode, leafNodeSource: 2, lifetime: undefined } },
      false,
    );
    await expectRule(verifyBytes(kp), "leaf_node_source");
  });

  it("leaf_signature: one bit of the leaf signature flipped (package signed again)", async () => {
    await fresh();
    const signature = Uint8Array.from(f.kp.leafNode.signature);
    signature[3]! ^= 1;
    const kp = await resign(f, { ...f.kp, leafNode: { ...f.kp.leafNode, signature } }, false);
    await expectRule(verifyBytes(kp), "leaf_signature");
  });

  it("leaf_signature: a leaf field changed after signing", async () => {
    await fresh();
    const kp = await resign(
      f,
      {
        ...f.kp,
        leafNode: {
          ...f.kp.leafNode,
          lifetime: { notBefore: BigInt(NOT_BEFORE - 1), notAfter: BigInt(NOT_AFTER) },
        },
      },
      false,
    );
    await expectRule(verifyBytes(kp), "leaf_signature");
  });

  it("keypackage_signature: one bit of the package signature flipped", async () => {
    await fresh();
    const signature = Uint8Array.from(f.kp.signature);
    signature[5]! ^= 1;
    await expectRule(verifyBytes({ ...f.kp, signature }), "keypackage_signature");
  });

  it("keypackage_signature: the init key replaced after signing", async () => {
    await fresh();
    const initKey = Uint8Array.from(f.kp.initKey);
    initKey[0]! ^= 1;
    await expectRule(verifyBytes({ ...f.kp, initKey }), "keypackage_signature");
  });

  it("keypackage_signature: signed by another key", async () => {
    await fresh();
    const other = await f.cs.signature.keygen();
    const kp = await resign({ ...f, signKey: other.signKey }, f.kp, false);
    await expectRule(verifyBytes(kp), "keypackage_signature");
  });

  it("init_key_equals_encryption_key", async () => {
    await fresh();
    const kp = await resign(f, { ...f.kp, initKey: f.kp.leafNode.encryptionKey }, false);
    await expectRule(verifyBytes(kp), "init_key_equals_encryption_key");
  });

  // --- §5.3.1 credential -------------------------------------------------------------

  it("credential_rejected: an empty Basic identity (default authentication service)", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({ ...leaf, credential: basic("") }));
    await expectRule(verifyBytes(kp), "credential_rejected");
  });

  it("credential_rejected: an X.509 credential without certificates", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({
      ...leaf,
      credential: { credentialType: 2, certificates: [] },
    }));
    await expectRule(verifyBytes(kp), "credential_rejected");
  });

  it("credential_rejected: the application's authentication service says no", async () => {
    await fresh();
    const authenticationService = {
      validate: () => ({ ok: false as const, reason: "not in the directory" }),
    };
    await expectRule(verifyKeyPackage(f.kp, options({ authenticationService })), "credential_rejected");
  });

  // --- §7.2 capabilities -------------------------------------------------------------

  it("version_not_in_capabilities", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({
      ...leaf,
      capabilities: { ...leaf.capabilities, versions: [] },
    }));
    await expectRule(verifyBytes(kp), "version_not_in_capabilities");
  });

  it("ciphersuite_not_in_capabilities", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({
      ...leaf,
      capabilities: {
        ...leaf.capabilities,
        ciphersuites: leaf.capabilities.ciphersuites.filter((s) => s !== 1),
      },
    }));
    await expectRule(verifyBytes(kp), "ciphersuite_not_in_capabilities");
  });

  it("credential_not_in_capabilities: basic not listed", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({
      ...leaf,
      capabilities: { ...leaf.capabilities, credentials: [2] },
    }));
    await expectRule(verifyBytes(kp), "credential_not_in_capabilities");
  });

  it("extensions_not_in_capabilities: a leaf extension not listed", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({
      ...leaf,
      extensions: [{ extensionType: 0xff00, extensionData: new Uint8Array(0) }],
    }));
    await expectRule(verifyBytes(kp), "extensions_not_in_capabilities");
  });

  it("extensions_not_in_capabilities: last_resort on the package, not in capabilities", async () => {
    await fresh();
    const kp = await resign(
      f,
      { ...f.kp, extensions: [{ extensionType: 0x000a, extensionData: new Uint8Array(0) }] },
      false,
    );
    await expectRule(verifyBytes(kp), "extensions_not_in_capabilities");
  });

  // --- §7.3 lifetime -----------------------------------------------------------------

  it("lifetime_not_yet_valid: one millisecond before not_before", async () => {
    await fresh();
    await expectRule(
      verifyKeyPackage(f.kp, options({ now: new Date(NOT_BEFORE * 1000 - 1) })),
      "lifetime_not_yet_valid",
    );
  });

  it("lifetime_expired: at not_after", async () => {
    await fresh();
    await expectRule(
      verifyKeyPackage(f.kp, options({ now: new Date(NOT_AFTER * 1000) })),
      "lifetime_expired",
    );
  });

  it("lifetime_too_long: a span over the policy's limit", async () => {
    await fresh();
    const kp = await withLeaf(f, (leaf) => ({
      ...leaf,
      lifetime: {
        notBefore: BigInt(NOT_BEFORE),
        notAfter: BigInt(NOT_BEFORE + KEYPACKAGE_MAX_SPAN / 1000 + 1),
      },
    }));
    await verifyBytes(kp); // no policy: accepted
    await expectRule(verifyBytes(kp, { maxLifetimeSpanMs: KEYPACKAGE_MAX_SPAN }), "lifetime_too_long");
  });
});

describe("Keypackage (public API) on the new validation", () => {
  it("an empty Basic identity fails kp.verify() with credential_rejected", async () => {
    const f = await validPackage();
    const kp = Keypackage.deserialize(
      encodeKeyPackage(await withLeaf(f, (l) => ({ ...l, credential: basic("") }))),
    );
    await expectRule(kp.verify({ now: NOW }), "credential_rejected");
    await expectRule(() => kp.credential(), "credential_rejected");
  });

  it("kp.verify() accepts an application's authentication service", async () => {
    const f = await validPackage();
    const kp = Keypackage.deserialize(f.bytes);
    await kp.verify({ now: NOW });
    await expectRule(
      kp.verify({ now: NOW, authenticationService: { validate: () => ({ ok: false, reason: "banned" }) } }),
      "credential_rejected",
    );
  });

  it("kp.verify() bounds the lifetime span (84 days + 1 h)", async () => {
    const f = await validPackage(1, { notAfter: NOT_BEFORE + KEYPACKAGE_MAX_SPAN / 1000 + 1 });
    await expectRule(Keypackage.deserialize(f.bytes).verify({ now: NOW }), "lifetime_too_long");
  });
});
