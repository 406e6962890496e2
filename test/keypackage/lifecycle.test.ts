import { describe, expect, it } from "vitest";
import { getCiphersuiteImpl, defaultCryptoProvider } from "ts-mls";
import { decodeKeyPackage, makeKeyPackageRef } from "ts-mls/keyPackage.js";
import { getCiphersuiteFromId } from "ts-mls/crypto/ciphersuite.js";
import {
  Ciphersuite,
  CredentialType,
  ErrorCode,
  KEYPACKAGE_DEFAULT_LIFETIME,
  Keypackage,
  SignatureScheme,
} from "../../src/index.js";
import { ALICE, BOB, memorySession, withCredential } from "../helpers/session.js";

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const CORE_SUITES = [1, 2, 3, 5, 7] as Ciphersuite[];

describe("generateKeypackage", () => {
  it("uses the default lifetime of 84 days with a 1 h not_before margin", async () => {
    const { cc, clock } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
    const lt = kp.lifetime();
    expect(lt.notBefore.getTime()).toBe(clock.t - HOUR);
    expect(lt.notAfter.getTime()).toBe(clock.t + KEYPACKAGE_DEFAULT_LIFETIME);
    expect(KEYPACKAGE_DEFAULT_LIFETIME).toBe(84 * DAY);
    expect(kp.ref().lifetime()).toEqual(lt);
  });

  it("honours a 30-day lifetime", async () => {
    const { cc, clock } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred, 30 * DAY));
    expect(kp.lifetime().notAfter.getTime()).toBe(clock.t + 30 * DAY);
    expect(kp.ref().isValid()).toBe(true);
  });

  it.each([0, -1, KEYPACKAGE_DEFAULT_LIFETIME + 1, Number.NaN, Number.POSITIVE_INFINITY])(
    "refuses lifetime %s with InvalidLifetime",
    async (lifetime) => {
      const { cc, database } = await memorySession();
      const cred = await withCredential(cc);
      await expect(cc.transaction((tx) => tx.generateKeypackage(cred, lifetime))).rejects.toMatchObject({
        code: ErrorCode.InvalidLifetime,
      });
      expect((await database.counts()).keypackages).toBe(0);
    },
  );

  it.each(CORE_SUITES)("suite %i: content matches CoreCrypto's kind and verifies", async (suite) => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc, suite);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
    await kp.verify();
    expect(kp.ciphersuite()).toBe(suite);
    expect(kp.capabilities()).toEqual({
      versions: ["mls10"],
      ciphersuites: [1, 2, 3, 7, 5, 4, 6],
      extensions: [],
      proposals: [],
      credentials: [1, 2],
    });
    expect(kp.parsed.extensions).toEqual([]);
    expect(kp.parsed.leafNode.extensions).toEqual([]);
    expect(kp.initKey()).not.toEqual(kp.encryptionKey());
    expect(kp.signatureKey()).toEqual(cred.publicKey());
    expect(kp.clientId()?.equals(ALICE)).toBe(true);
    expect(kp.isLastResort()).toBe(false);
  });

  it("stores the key package, its HPKE init private key and its encryption key pair", async () => {
    const { cc, database } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
    const ks = database.keystore;
    const row = await ks.get("keypackages", kp.ref().hex());
    expect(row?.keypackage).toEqual(kp.serialize());
    expect(await ks.get("hpke_private_keys", row!.initKey)).toBeDefined();
    expect(await ks.get("encryption_keypairs", row!.encryptionKey)).toBeDefined();
  });

  it("does not prune existing packages", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    await cc.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.generateKeypackage(cred);
    });
    await cc.transaction((tx) => tx.generateKeypackage(cred));
    expect(await cc.transaction((tx) => tx.getKeypackageRefs())).toHaveLength(6);
  });

  it("makes a last-resort package when asked", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred, undefined, { lastResort: true }));
    await kp.verify();
    expect(kp.isLastResort()).toBe(true);
    expect(kp.capabilities().extensions).toEqual([0x000a]);
    const refs = await cc.transaction((tx) => tx.getKeypackageRefs());
    expect(refs[0]?.isLastResort()).toBe(true);
  });

  it("rejects an unknown credential with CredentialNotFound", async () => {
    const { cc } = await memorySession();
    const other = await memorySession();
    const foreign = await withCredential(other.cc);
    await expect(cc.transaction((tx) => tx.generateKeypackage(foreign))).rejects.toMatchObject({
      code: ErrorCode.CredentialNotFound,
    });
  });
});

describe("KeypackageRef", () => {
  it("exposes suite, scheme, credential type and lifetime; refs include staged packages", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc, Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256);
    await cc.transaction(async (tx) => {
      const kp = await tx.generateKeypackage(cred);
      const refs = await tx.getKeypackageRefs();
      expect(refs).toHaveLength(1);
      const ref = refs[0]!;
      expect(ref.hashRef()).toEqual(kp.ref().hashRef());
      expect(ref.ciphersuite()).toBe(Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256);
      expect(ref.signatureScheme()).toBe(SignatureScheme.ECDSA_SECP256R1_SHA256);
      expect(ref.credentialType()).toBe(CredentialType.Basic);
      expect(ref.lifetime()).toEqual(kp.lifetime());
    });
  });

  it("isValid follows notBefore and notAfter with a moved clock", async () => {
    const { cc, clock } = await memorySession();
    const cred = await withCredential(cc);
    await cc.transaction((tx) => tx.generateKeypackage(cred, 10 * DAY));
    const [ref] = await cc.transaction((tx) => tx.getKeypackageRefs());
    const { notBefore, notAfter } = ref!.lifetime()!;
    expect(ref!.isValid()).toBe(true);
    expect(ref!.isValid(new Date(notBefore.getTime() - 1))).toBe(false);
    expect(ref!.isValid(notBefore)).toBe(true);
    expect(ref!.isValid(new Date(notAfter.getTime() - 1))).toBe(true);
    expect(ref!.isValid(notAfter)).toBe(false);
    clock.advance(10 * DAY);
    expect(ref!.isValid()).toBe(false);
  });

  it("a span longer than 84 days + 1 h is invalid even when current", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
    const { notBefore, notAfter } = kp.lifetime();
    expect(notAfter.getTime() - notBefore.getTime()).toBe(KEYPACKAGE_DEFAULT_LIFETIME + HOUR);
    expect(kp.ref().isValid()).toBe(true);
  });

  it.each([1, 2, 3, 5, 7] as Ciphersuite[])(
    "suite %i: hashRef equals ts-mls makeKeyPackageRef",
    async (suite) => {
      const { cc } = await memorySession();
      const cred = await withCredential(cc, suite);
      const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
      const cs = await getCiphersuiteImpl(getCiphersuiteFromId(suite), defaultCryptoProvider);
      const decoded = decodeKeyPackage(kp.serialize(), 0)![0]; // ts-mls as the oracle
      expect(kp.ref().hashRef()).toEqual(await makeKeyPackageRef(decoded, cs.hash));
    },
  );
});

describe("Keypackage bytes", () => {
  it("round-trip through deserialize/serialize", async () => {
    const { cc, clock } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred));
    const again = Keypackage.deserialize(kp.serialize());
    expect(again.serialize()).toEqual(kp.serialize());
    expect(again.ref().hashRef()).toEqual(kp.ref().hashRef());
    await again.verify({ now: clock.now() });
  });

  it("rejects trailing and truncated bytes", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    const bytes = (await cc.transaction((tx) => tx.generateKeypackage(cred))).serialize();
    const trailing = new Uint8Array([...bytes, 0]);
    expect(() => Keypackage.deserialize(trailing)).toThrow(
      expect.objectContaining({ rule: "trailing_bytes" }),
    );
    expect(() => Keypackage.deserialize(bytes.slice(0, -1))).toThrow(
      expect.objectContaining({ rule: "decode" }),
    );
    expect(() => Keypackage.deserialize(new Uint8Array())).toThrow(
      expect.objectContaining({ code: "InvalidKeypackage" }),
    );
  });

  it("verify() names the broken rule", async () => {
    const { cc, clock } = await memorySession();
    const cred = await withCredential(cc);
    const kp = await cc.transaction((tx) => tx.generateKeypackage(cred, 2 * DAY));
    const bytes = kp.serialize();
    const badSig = Uint8Array.from(bytes);
    badSig[badSig.length - 5]! ^= 0xff;
    await expect(Keypackage.deserialize(badSig).verify()).rejects.toMatchObject({
      rule: "keypackage_signature",
    });
    const now = clock.now();
    await expect(kp.verify({ now: new Date(now.getTime() + 3 * DAY) })).rejects.toMatchObject({
      rule: "lifetime_expired",
    });
    await expect(kp.verify({ now: new Date(now.getTime() - 2 * HOUR) })).rejects.toMatchObject({
      rule: "lifetime_not_yet_valid",
    });
  });
});

describe("removal", () => {
  it("removeKeypackage removes exactly one row from each of the three tables and is idempotent", async () => {
    const { cc, database } = await memorySession();
    const cred = await withCredential(cc);
    const [a] = await cc.transaction(async (tx) => [
      await tx.generateKeypackage(cred),
      await tx.generateKeypackage(cred),
    ]);
    await cc.transaction((tx) => tx.removeKeypackage(a!.ref()));
    expect(await database.counts()).toMatchObject({
      keypackages: 1,
      hpke_private_keys: 1,
      encryption_keypairs: 1,
    });
    await cc.transaction((tx) => tx.removeKeypackage(a!.ref()));
    expect(await database.counts()).toMatchObject({
      keypackages: 1,
      hpke_private_keys: 1,
      encryption_keypairs: 1,
    });
    expect(await database.keystore.get("keypackages", a!.ref().hex())).toBeUndefined();
  });

  it("removeKeypackagesFor removes exactly one credential's packages", async () => {
    const { cc, database } = await memorySession();
    const c1 = await withCredential(cc, Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519);
    const c2 = await withCredential(cc, Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256);
    await cc.transaction(async (tx) => {
      for (let i = 0; i < 3; i++) await tx.generateKeypackage(c1);
      for (let i = 0; i < 2; i++) await tx.generateKeypackage(c2);
    });
    await cc.transaction((tx) => tx.removeKeypackagesFor(c1));
    const refs = await cc.transaction((tx) => tx.getKeypackageRefs());
    expect(refs.map((r) => r.ciphersuite())).toEqual([2, 2]);
    expect(await database.counts()).toMatchObject({
      keypackages: 2,
      hpke_private_keys: 2,
      encryption_keypairs: 2,
    });
  });

  it("removeCredential removes its packages, then the credential", async () => {
    const { cc, database } = await memorySession();
    const c1 = await withCredential(cc);
    const c2 = await withCredential(cc, Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, BOB);
    await cc.transaction(async (tx) => {
      await tx.generateKeypackage(c1);
      await tx.generateKeypackage(c2);
    });
    await cc.transaction((tx) => tx.removeCredential(c1));
    expect(await database.counts()).toMatchObject({
      credentials: 1,
      keypackages: 1,
      hpke_private_keys: 1,
      encryption_keypairs: 1,
    });
    await expect(cc.transaction((tx) => tx.removeCredential(c1))).rejects.toMatchObject({
      code: ErrorCode.CredentialNotFound,
    });
    await expect(cc.transaction((tx) => tx.generateKeypackage(c1))).rejects.toMatchObject({
      code: ErrorCode.CredentialNotFound,
    });
  });
});
