/** The DeliveryServiceStore contract, run against every backend. */
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeliveryServiceStore, DsClient, NewDsKeypackage } from "../../src/ds/store.js";
import { randomUserId } from "./helpers.js";

const NOW = 1_800_000_000;
const DAY = 86_400;

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));
const hex = (u: Uint8Array): string => Buffer.from(u).toString("hex");

function kp(o: Partial<NewDsKeypackage> = {}): NewDsKeypackage {
  return {
    ref: rnd(32),
    ciphersuite: 1,
    lastResort: false,
    notBefore: NOW - 3600,
    notAfter: NOW + 30 * DAY,
    initKeyHash: rnd(32),
    keyPackage: rnd(120),
    ...o,
  };
}

function client(
  userId = randomUserId(),
  device = randomBytes(2).toString("hex"),
): DsClient & { tokenHash: Uint8Array } {
  return {
    clientId: `${userId}:${device}@example.com`,
    userId,
    signatureKeys: new Map([
      [1, rnd(32)],
      [2, rnd(65)],
    ]),
    createdAt: NOW,
    tokenHash: rnd(32),
  };
}

export function describeStoreContract(
  name: string,
  open: () => Promise<{ store: DeliveryServiceStore; cleanup: () => Promise<void> }>,
): void {
  describe(`store contract: ${name}`, () => {
    let store: DeliveryServiceStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    async function registered(userId?: string): Promise<DsClient> {
      const c = client(userId);
      expect(await store.createClient(c)).toBe(true);
      return c;
    }

    it("init is idempotent and ping works", async () => {
      await store.init();
      await store.ping();
    });

    it("registers clients once and finds them by id and token hash", async () => {
      const c = client();
      expect(await store.createClient(c)).toBe(true);
      expect(await store.createClient({ ...c, tokenHash: rnd(32) })).toBe(false);
      const byId = await store.getClient(c.clientId);
      expect(byId).toMatchObject({ clientId: c.clientId, userId: c.userId, createdAt: NOW });
      expect(byId?.signatureKeys.get(1)).toEqual(c.signatureKeys.get(1));
      expect(byId?.signatureKeys.get(2)).toEqual(c.signatureKeys.get(2));
      expect((await store.clientByTokenHash(c.tokenHash))?.clientId).toBe(c.clientId);
      expect(await store.clientByTokenHash(rnd(32))).toBeUndefined();
      expect(await store.getClient("nobody")).toBeUndefined();
    });

    it("stores packages and counts only valid ones, last resort apart, per suite", async () => {
      const c = await registered();
      const r = await store.addKeypackages(c, [
        kp(),
        kp(),
        kp({ lastResort: true }),
        kp({ ciphersuite: 2 }),
        kp({ notAfter: NOW - 1 }),
        kp({ notBefore: NOW + 10 }),
      ]);
      expect(r).toEqual({ ok: true, removed: 0 });
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 2, lastResort: 1 });
      expect(await store.countKeypackages(c.clientId, 2, NOW)).toEqual({ regular: 1, lastResort: 0 });
      expect(await store.countKeypackages(c.clientId, 3, NOW)).toEqual({ regular: 0, lastResort: 0 });
      expect(await store.poolSizes(NOW)).toEqual(
        expect.arrayContaining([
          { ciphersuite: 1, lastResort: false, count: 2 },
          { ciphersuite: 1, lastResort: true, count: 1 },
          { ciphersuite: 2, lastResort: false, count: 1 },
        ]),
      );
    });

    it("refuses a seen init key, all or nothing", async () => {
      const c = await registered();
      const first = kp();
      await store.addKeypackages(c, [first]);
      expect(await store.seenInitKeys([first.initKeyHash, rnd(32)])).toEqual([first.initKeyHash]);
      const other = kp();
      const r = await store.addKeypackages(c, [other, kp({ initKeyHash: first.initKeyHash })]);
      expect(r).toMatchObject({ ok: false, reason: "init_key_reused" });
      expect(r.ok === false && r.reason === "init_key_reused" && r.initKeyHashes.map(hex)).toEqual([
        hex(first.initKeyHash),
      ]);
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
      // the rolled-back package's init key was not recorded
      expect(await store.seenInitKeys([other.initKeyHash])).toEqual([]);
      // still seen after the package is deleted or claimed
      await store.deleteKeypackages(c.clientId, [first.ref]);
      expect((await store.addKeypackages(c, [kp({ initKeyHash: first.initKeyHash })])).ok).toBe(false);
    });

    it("refuses an init key repeated within one request", async () => {
      const c = await registered();
      const h = rnd(32);
      const r = await store.addKeypackages(c, [kp({ initKeyHash: h }), kp({ initKeyHash: h })]);
      expect(r.ok === false && r.reason === "init_key_reused" && r.initKeyHashes.map(hex)).toEqual([hex(h)]);
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 0, lastResort: 0 });
    });

    it("replaces only the suites asked for, atomically", async () => {
      const c = await registered();
      await store.addKeypackages(c, [kp(), kp(), kp({ lastResort: true }), kp({ ciphersuite: 2 })]);
      const r = await store.addKeypackages(c, [kp()], { replaceSuites: [1] });
      expect(r).toEqual({ ok: true, removed: 3 });
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
      expect(await store.countKeypackages(c.clientId, 2, NOW)).toEqual({ regular: 1, lastResort: 0 });
      // a failed replace changes nothing
      const seen = kp({ ciphersuite: 2 });
      await store.addKeypackages(c, [seen], { replaceSuites: [2] });
      const bad = await store.addKeypackages(c, [kp({ initKeyHash: seen.initKeyHash })], {
        replaceSuites: [1],
      });
      expect(bad.ok).toBe(false);
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
    });

    it("a new last-resort package supersedes the previous one of its suite", async () => {
      const c = await registered();
      await store.addKeypackages(c, [kp({ lastResort: true }), kp({ lastResort: true, ciphersuite: 2 })]);
      const newer = kp({ lastResort: true });
      expect(await store.addKeypackages(c, [newer])).toEqual({ ok: true, removed: 1 });
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 0, lastResort: 1 });
      expect(await store.countKeypackages(c.clientId, 2, NOW)).toEqual({ regular: 0, lastResort: 1 });
      const other = await registered(c.userId);
      const r = await store.claim(c.userId, 1, other.clientId, NOW);
      expect(r?.keyPackages.map((k) => hex(k.ref))).toEqual([hex(newer.ref)]);
    });

    it("enforces the per-client cap, all or nothing", async () => {
      const c = await registered();
      await store.addKeypackages(c, [kp(), kp()]);
      const r = await store.addKeypackages(c, [kp(), kp()], { maxStoredPerClient: 3 });
      expect(r).toEqual({ ok: false, reason: "pool_full", stored: 2 });
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 2, lastResort: 0 });
      expect((await store.addKeypackages(c, [kp()], { maxStoredPerClient: 3 })).ok).toBe(true);
    });

    it("deletes only the caller's packages by ref", async () => {
      const a = await registered();
      const b = await registered();
      const pa = kp();
      const pb = kp();
      await store.addKeypackages(a, [pa, kp()]);
      await store.addKeypackages(b, [pb]);
      expect(await store.deleteKeypackages(a.clientId, [pa.ref, pb.ref, rnd(32)])).toBe(1);
      expect(await store.deleteKeypackages(a.clientId, [])).toBe(0);
      expect(await store.countKeypackages(a.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
      expect(await store.countKeypackages(b.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
    });

    it("claims one package per other client, soonest expiry first, then last resort, then exhausted", async () => {
      const userId = randomUserId();
      const [caller, c1, c2, c3] = [
        await registered(userId),
        await registered(userId),
        await registered(userId),
        await registered(userId),
      ];
      const late = kp({ notAfter: NOW + 60 * DAY });
      const soon = kp({ notAfter: NOW + 10 * DAY });
      const lr1 = kp({ lastResort: true });
      await store.addKeypackages(c1, [late, soon, lr1]);
      const lr2 = kp({ lastResort: true });
      await store.addKeypackages(c2, [lr2, kp({ ciphersuite: 2 })]);
      await store.addKeypackages(caller, [kp()]);

      const r1 = await store.claim(userId, 1, caller.clientId, NOW);
      const byClient = (r: typeof r1) => new Map(r?.keyPackages.map((k) => [k.clientId, k]));
      expect(byClient(r1).get(c1.clientId)).toMatchObject({
        ref: soon.ref,
        keyPackage: soon.keyPackage,
        lastResort: false,
      });
      expect(byClient(r1).get(c2.clientId)).toMatchObject({ ref: lr2.ref, lastResort: true });
      expect(byClient(r1).has(caller.clientId)).toBe(false);
      expect(r1?.exhausted).toEqual([c3.clientId]);

      const r2 = await store.claim(userId, 1, caller.clientId, NOW);
      expect(byClient(r2).get(c1.clientId)?.ref).toEqual(late.ref);
      const r3 = await store.claim(userId, 1, caller.clientId, NOW);
      expect(byClient(r3).get(c1.clientId)).toMatchObject({ ref: lr1.ref, lastResort: true });
      const r4 = await store.claim(userId, 1, caller.clientId, NOW);
      expect(byClient(r4).get(c1.clientId)).toMatchObject({ ref: lr1.ref, lastResort: true });
      expect(await store.countKeypackages(c1.clientId, 1, NOW)).toEqual({ regular: 0, lastResort: 1 });
      // the caller's own package was never touched
      expect(await store.countKeypackages(caller.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
      // suite 2 of c2 untouched
      expect(await store.countKeypackages(c2.clientId, 2, NOW)).toEqual({ regular: 1, lastResort: 0 });
    });

    it("claims skip and purge expired packages, and skip not-yet-valid ones", async () => {
      const userId = randomUserId();
      const caller = await registered(userId);
      const c = await registered(userId);
      await store.addKeypackages(c, [
        kp({ notAfter: NOW }),
        kp({ notAfter: NOW - DAY }),
        kp({ notBefore: NOW + 60 }),
      ]);
      const r = await store.claim(userId, 1, caller.clientId, NOW);
      expect(r).toEqual({ keyPackages: [], exhausted: [c.clientId], purged: 2 });
      expect(await store.countKeypackages(c.clientId, 1, NOW + 60)).toEqual({ regular: 1, lastResort: 0 });
    });

    it("claim for an unknown user is undefined; a user with only the caller gives nothing", async () => {
      expect(await store.claim(randomUserId(), 1, "x", NOW)).toBeUndefined();
      const only = await registered();
      expect(await store.claim(only.userId, 1, only.clientId, NOW)).toEqual({
        keyPackages: [],
        exhausted: [],
        purged: 0,
      });
    });

    it("concurrent claims never hand a package out twice and lose none", async () => {
      const userId = randomUserId();
      const caller = await registered();
      const c1 = await registered(userId);
      const c2 = await registered(userId);
      const N = 25;
      await store.addKeypackages(c1, [...Array.from({ length: N }, () => kp()), kp({ lastResort: true })]);
      await store.addKeypackages(
        c2,
        Array.from({ length: N }, () => kp()),
      );
      const results = await Promise.all(
        Array.from({ length: 40 }, () => store.claim(userId, 1, caller.clientId, NOW)),
      );
      const regular = results.flatMap((r) => r?.keyPackages ?? []).filter((k) => !k.lastResort);
      const refs = regular.map((k) => hex(k.ref));
      expect(new Set(refs).size).toBe(refs.length);
      expect(regular.filter((k) => k.clientId === c1.clientId)).toHaveLength(N);
      expect(regular.filter((k) => k.clientId === c2.clientId)).toHaveLength(N);
      const lastResort = results.flatMap((r) => r?.keyPackages ?? []).filter((k) => k.lastResort);
      expect(lastResort.every((k) => k.clientId === c1.clientId)).toBe(true);
      expect(lastResort).toHaveLength(40 - N);
      expect(results.flatMap((r) => r?.exhausted ?? [])).toEqual(Array(40 - N).fill(c2.clientId));
      expect(await store.countKeypackages(c1.clientId, 1, NOW)).toEqual({ regular: 0, lastResort: 1 });
    });

    it("purgeExpired drops expired packages and replay entries whose package would be expired", async () => {
      const c = await registered();
      const old = kp({ notAfter: NOW - 1 });
      const live = kp();
      await store.addKeypackages(c, [old, live]);
      expect(await store.purgeExpired(NOW)).toEqual({ keypackages: 1, initKeys: 1 });
      expect(await store.seenInitKeys([old.initKeyHash, live.initKeyHash])).toEqual([live.initKeyHash]);
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
    });
  });
}
