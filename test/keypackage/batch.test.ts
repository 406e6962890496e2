import { describe, expect, it } from "vitest";
import { Ciphersuite, ErrorCode, Keypackage } from "../../src/index.js";
import { PARALLEL_THRESHOLD } from "../../src/keypackage/batch.js";
import { memorySession, withCredential } from "../helpers/session.js";

describe("generateKeypackages (batch)", () => {
  it.each([
    [Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, PARALLEL_THRESHOLD + 7],
    [Ciphersuite.MLS_128_DHKEMP256_AES128GCM_SHA256_P256, PARALLEL_THRESHOLD],
    [Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 5],
  ])("suite %i × %i: every package valid, stored in all three tables, unique keys", async (suite, count) => {
    const { cc, database, clock } = await memorySession();
    const cred = await withCredential(cc, suite);
    const kps = await cc.transaction((tx) => tx.generateKeypackages(cred, count));
    expect(kps).toHaveLength(count);
    expect(await database.counts()).toMatchObject({
      keypackages: count,
      hpke_private_keys: count,
      encryption_keypairs: count,
    });
    const inits = new Set(kps.map((k) => Buffer.from(k.initKey()).toString("hex")));
    expect(inits.size).toBe(count);
    for (const kp of kps.slice(0, 8)) {
      const reparsed = Keypackage.deserialize(kp.serialize());
      await reparsed.verify({ now: clock.now() });
      expect(kp.ref().hex()).toBe(reparsed.ref().hex());
      expect(kp.ref().lifetime()).toEqual(reparsed.ref().lifetime());
      expect(kp.initKey()).toEqual(reparsed.initKey());
      const row = await database.keystore.get("keypackages", kp.ref().hex());
      const priv = await database.keystore.get("hpke_private_keys", row!.initKey);
      expect(priv!.privateKey.some((b) => b !== 0)).toBe(true);
      const enc = await database.keystore.get("encryption_keypairs", row!.encryptionKey);
      expect(enc!.privateKey.some((b) => b !== 0)).toBe(true);
    }
  });

  it("validates count and lifetime", async () => {
    const { cc } = await memorySession();
    const cred = await withCredential(cc);
    await expect(cc.transaction((tx) => tx.generateKeypackages(cred, -1))).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    await expect(cc.transaction((tx) => tx.generateKeypackages(cred, 100, 0))).rejects.toMatchObject({
      code: ErrorCode.InvalidLifetime,
    });
  });
});
