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

export interface OpenedStore {
  store: DeliveryServiceStore;
  cleanup: () => Promise<void>;
  /**
   * `n` more stores on the same database, each on its own connections (PostgreSQL: its own
   * pool; SQLite file: its own process), for the concurrency cases. Absent for `:memory:`,
   * where those cases run on the one store.
   */
  peers?: (n: number) => Promise<DeliveryServiceStore[]>;
}

export function describeStoreContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`store contract: ${name}`, () => {
    let store: DeliveryServiceStore;
    let cleanup: () => Promise<void>;
    let openPeers: OpenedStore["peers"];
    let opened: DeliveryServiceStore[] = [];

    beforeEach(async () => {
      ({ store, cleanup, peers: openPeers } = await open());
      opened = [];
    });
    afterEach(async () => {
      await Promise.all(opened.map((p) => p.close()));
      await cleanup();
    });

    /** `n` stores on this database with their own connections (or this store, n times). */
    async function peers(n: number): Promise<DeliveryServiceStore[]> {
      if (openPeers === undefined) return Array.from({ length: n }, () => store);
      const ps = await openPeers(n);
      opened.push(...ps);
      return ps;
    }

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
      // stored packages, from the counters (expired and not-yet-valid ones included until purged)
      expect(await store.poolSizes(NOW)).toEqual([
        { ciphersuite: 1, lastResort: false, count: 4 },
        { ciphersuite: 1, lastResort: true, count: 1 },
        { ciphersuite: 2, lastResort: false, count: 1 },
      ]);
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
      expect(await store.purgeExpired(NOW)).toEqual({ keypackages: 1, initKeys: 1, claimRecords: 0 });
      expect(await store.seenInitKeys([old.initKeyHash, live.initKeyHash])).toEqual([live.initKeyHash]);
      expect(await store.countKeypackages(c.clientId, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
    });

    // ── concurrency: uploads, replaces and deletes of one client are serialized ──

    /** Run `calls` spread over `stores`, all started at once. */
    const spread = <T>(stores: DeliveryServiceStore[], calls: ((s: DeliveryServiceStore) => Promise<T>)[]) =>
      Promise.all(calls.map((call, i) => call(stores[i % stores.length] as DeliveryServiceStore)));

    /** Every regular package of `c` (suite 1), taken by claims of another client of its user. */
    async function drain(c: DsClient): Promise<string[]> {
      const other = client(c.userId);
      await store.createClient(other);
      const refs: string[] = [];
      for (;;) {
        const r = await store.claim(c.userId, 1, other.clientId, NOW);
        const k = r?.keyPackages.find((x) => x.clientId === c.clientId && !x.lastResort);
        if (k === undefined) return refs;
        refs.push(hex(k.ref));
      }
    }

    it("10 concurrent last-resort uploads of one client leave exactly one", async () => {
      const c = await registered();
      const ps = await peers(5);
      const uploads = Array.from({ length: 10 }, () => kp({ lastResort: true }));
      const results = await spread(
        ps,
        uploads.map((p) => (s) => s.addKeypackages(c, [p, kp()])),
      );
      expect(results.every((r) => r.ok)).toBe(true);
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 10, lastResort: 1 });
      // the survivor is one of the uploaded ones, and claims hand it out
      const other = await registered(c.userId);
      await drain(c);
      const r = await store.claim(c.userId, 1, other.clientId, NOW);
      const lr = r?.keyPackages.find((k) => k.clientId === c.clientId);
      expect(lr?.lastResort).toBe(true);
      expect(uploads.map((u) => hex(u.ref))).toContain(hex(lr?.ref ?? new Uint8Array()));
    });

    it("5 concurrent replaces leave exactly the packages of one of them", async () => {
      const c = await registered();
      await store.addKeypackages(c, [kp(), kp(), kp(), kp({ lastResort: true })]);
      const ps = await peers(5);
      const requests = Array.from({ length: 5 }, () => [kp(), kp(), kp()]);
      const results = await spread(
        ps,
        requests.map((pkgs) => (s) => s.addKeypackages(c, pkgs, { replaceSuites: [1] })),
      );
      expect(results.every((r) => r.ok)).toBe(true);
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 3, lastResort: 0 });
      const left = (await drain(c)).sort();
      expect(requests.map((pkgs) => pkgs.map((p) => hex(p.ref)).sort())).toContainEqual(left);
      // removed counts add up: 4 before + 15 uploaded − 3 left
      expect(results.reduce((n, r) => n + (r.ok ? r.removed : 0), 0)).toBe(4 + 15 - 3);
    });

    it("the per-client cap holds under 20 concurrent uploads", async () => {
      const c = await registered();
      const ps = await peers(5);
      const results = await spread(
        ps,
        Array.from(
          { length: 20 },
          () => (s: DeliveryServiceStore) => s.addKeypackages(c, [kp()], { maxStoredPerClient: 10 }),
        ),
      );
      const accepted = results.filter((r) => r.ok).length;
      expect(accepted).toBe(10);
      expect(results.filter((r) => !r.ok && r.reason === "pool_full")).toHaveLength(10);
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 10, lastResort: 0 });
    });

    it("deletes, replaces and claims running together keep the pool counters exact", async () => {
      const userId = randomUserId();
      const a = await registered(userId);
      const b = await registered(userId);
      const claimer = await registered();
      const aPkgs = Array.from({ length: 30 }, () => kp());
      await store.addKeypackages(a, [...aPkgs, kp({ lastResort: true }), kp({ ciphersuite: 2 })]);
      await store.addKeypackages(
        b,
        Array.from({ length: 10 }, () => kp()),
      );
      const ps = await peers(4);
      await spread<unknown>(ps, [
        (s) =>
          s.deleteKeypackages(
            a,
            aPkgs.slice(0, 10).map((p) => p.ref),
          ),
        (s) => s.addKeypackages(b, [kp(), kp()], { replaceSuites: [1] }),
        ...Array.from(
          { length: 8 },
          () => (s: DeliveryServiceStore) => s.claim(userId, 1, claimer.clientId, NOW),
        ),
        (s) => s.addKeypackages(a, [kp({ lastResort: true }), kp({ notAfter: NOW - 1 })]),
        (s) =>
          s.deleteKeypackages(
            a.clientId,
            aPkgs.slice(10, 12).map((p) => p.ref),
          ),
      ]);
      const ca = await store.countKeypackages(a, 1, NOW);
      const cb = await store.countKeypackages(b, 1, NOW);
      const a2 = await store.countKeypackages(a, 2, NOW);
      const sizes = await store.poolSizes(NOW);
      const size = (suite: number, lastResort: boolean) =>
        sizes.find((p) => p.ciphersuite === suite && p.lastResort === lastResort)?.count ?? 0;
      // the expired package is stored until purged (or a claim of that user purges it)
      const expired = size(1, false) - ca.regular - cb.regular;
      expect([0, 1]).toContain(expired);
      expect(size(1, true)).toBe(ca.lastResort + cb.lastResort);
      expect(size(1, true)).toBe(1);
      expect(size(2, false)).toBe(a2.regular);
      await store.purgeExpired(NOW);
      expect((await store.poolSizes(NOW)).find((p) => p.ciphersuite === 1 && !p.lastResort)?.count).toBe(
        ca.regular + cb.regular,
      );
    });

    // ── claim limits per (claimer, target user) ─────────────────────────────

    it("limits claims per claimer and target user; other claimers still get regular packages", async () => {
      const target = await registered();
      await store.addKeypackages(target, [
        ...Array.from({ length: 10 }, () => kp()),
        kp({ lastResort: true }),
      ]);
      const drainer = await registered();
      const other = await registered();
      const limit = { max: 3, windowSeconds: 60 };
      for (let i = 0; i < 3; i++) {
        const r = await store.claim(target.userId, 1, drainer.clientId, NOW + i, { limit });
        expect(r?.keyPackages.map((k) => k.lastResort)).toEqual([false]);
        expect(r?.limited).toBeUndefined();
      }
      const refused = await store.claim(target.userId, 1, drainer.clientId, NOW + 10, { limit });
      expect(refused).toEqual({ keyPackages: [], exhausted: [], purged: 0, limited: { retryAfter: 50 } });
      expect(await store.countKeypackages(target, 1, NOW)).toEqual({ regular: 7, lastResort: 1 });
      // another claimer is not limited and still gets regular packages
      const r = await store.claim(target.userId, 1, other.clientId, NOW + 10, { limit });
      expect(r?.keyPackages.map((k) => k.lastResort)).toEqual([false]);
      // the limit is per target user: the drainer may claim someone else
      const elsewhere = await registered();
      await store.addKeypackages(elsewhere, [kp()]);
      expect(
        (await store.claim(elsewhere.userId, 1, drainer.clientId, NOW + 10, { limit }))?.limited,
      ).toBeUndefined();
      // a new window starts after 60 s
      const later = await store.claim(target.userId, 1, drainer.clientId, NOW + 60, { limit });
      expect(later?.keyPackages.map((k) => k.lastResort)).toEqual([false]);
      // an unknown user is not counted
      expect(await store.claim(randomUserId(), 1, drainer.clientId, NOW, { limit })).toBeUndefined();
    });

    it("the claim limit holds under concurrent claims on several connections", async () => {
      const target = await registered();
      await store.addKeypackages(
        target,
        Array.from({ length: 30 }, () => kp()),
      );
      const drainer = await registered();
      const ps = await peers(4);
      const results = await spread(
        ps,
        Array.from(
          { length: 12 },
          () => (s: DeliveryServiceStore) =>
            s.claim(target.userId, 1, drainer.clientId, NOW, { limit: { max: 5, windowSeconds: 3600 } }),
        ),
      );
      expect(results.filter((r) => r?.limited === undefined)).toHaveLength(5);
      expect(await store.countKeypackages(target, 1, NOW)).toEqual({ regular: 25, lastResort: 0 });
    });

    // ── idempotency keys ────────────────────────────────────────────────────

    it("a retry with the same idempotency key gets the same packages, on any connection", async () => {
      const userId = randomUserId();
      const t1 = await registered(userId);
      const t2 = await registered(userId);
      await store.addKeypackages(t1, [kp(), kp(), kp({ lastResort: true })]);
      const claimer = await registered();
      const idempotency = { key: "k-1", windowSeconds: 600 };
      const first = await store.claim(userId, 1, claimer.clientId, NOW, { idempotency });
      expect(first?.replayed).toBeUndefined();
      expect(first?.exhausted).toEqual([t2.clientId]);
      const [peer] = await peers(1);
      const again = await peer!.claim(userId, 1, claimer.clientId, NOW + 5, { idempotency });
      expect(again).toEqual({ ...first, purged: 0, replayed: true });
      expect(await store.countKeypackages(t1, 1, NOW)).toEqual({ regular: 1, lastResort: 1 });
      // another key (or no key) takes a new package
      const other = await store.claim(userId, 1, claimer.clientId, NOW, {
        idempotency: { ...idempotency, key: "k-2" },
      });
      expect(hex(other?.keyPackages[0]?.ref ?? new Uint8Array())).not.toBe(
        hex(first?.keyPackages[0]?.ref ?? new Uint8Array()),
      );
      // the key is per claimer: another claimer's "k-1" is its own
      const claimer2 = await registered();
      const theirs = await store.claim(userId, 1, claimer2.clientId, NOW, { idempotency });
      expect(theirs?.replayed).toBeUndefined();
      expect(theirs?.keyPackages.map((k) => k.lastResort)).toEqual([true]);
      // the same key for another user or suite is refused, nothing taken
      const elsewhere = await registered();
      await store.addKeypackages(elsewhere, [kp()]);
      expect(await store.claim(elsewhere.userId, 1, claimer.clientId, NOW, { idempotency })).toEqual({
        keyPackages: [],
        exhausted: [],
        purged: 0,
        keyMismatch: true,
      });
      expect((await store.claim(userId, 2, claimer.clientId, NOW, { idempotency }))?.keyMismatch).toBe(true);
      expect(await store.countKeypackages(elsewhere, 1, NOW)).toEqual({ regular: 1, lastResort: 0 });
    });

    it("concurrent retries with one idempotency key take one package between them", async () => {
      const target = await registered();
      await store.addKeypackages(
        target,
        Array.from({ length: 10 }, () => kp()),
      );
      const claimer = await registered();
      const ps = await peers(5);
      const idempotency = { key: "same", windowSeconds: 600 };
      const results = await spread(
        ps,
        Array.from(
          { length: 10 },
          () => (s: DeliveryServiceStore) =>
            s.claim(target.userId, 1, claimer.clientId, NOW, { idempotency }),
        ),
      );
      const refs = new Set(results.map((r) => hex(r?.keyPackages[0]?.ref ?? new Uint8Array())));
      expect(refs.size).toBe(1);
      expect(results.filter((r) => r?.replayed !== true)).toHaveLength(1);
      expect(await store.countKeypackages(target, 1, NOW)).toEqual({ regular: 9, lastResort: 0 });
    });

    it("idempotency keys expire after their window and are purged", async () => {
      const target = await registered();
      await store.addKeypackages(target, [
        kp({ notAfter: NOW + 90 * DAY }),
        kp({ notAfter: NOW + 90 * DAY }),
      ]);
      const claimer = await registered();
      const idempotency = { key: "exp", windowSeconds: 60 };
      const first = await store.claim(target.userId, 1, claimer.clientId, NOW, { idempotency });
      expect(
        (await store.claim(target.userId, 1, claimer.clientId, NOW + 59, { idempotency }))?.replayed,
      ).toBe(true);
      // past the window the key is free again: a new claim
      const fresh = await store.claim(target.userId, 1, claimer.clientId, NOW + 60, { idempotency });
      expect(fresh?.replayed).toBeUndefined();
      expect(hex(fresh?.keyPackages[0]?.ref ?? new Uint8Array())).not.toBe(
        hex(first?.keyPackages[0]?.ref ?? new Uint8Array()),
      );
      // an unknown user leaves no record; a limited claim neither
      expect(
        await store.claim(randomUserId(), 1, claimer.clientId, NOW, {
          idempotency: { key: "u", windowSeconds: 60 },
        }),
      ).toBeUndefined();
      const limited = await store.claim(target.userId, 1, claimer.clientId, NOW, {
        idempotency: { key: "l", windowSeconds: 60 },
        limit: { max: 0, windowSeconds: 60 },
      });
      expect(limited?.limited).toBeDefined();
      const p = await store.purgeExpired(NOW + 200);
      expect(p.claimRecords).toBe(2); // the key "exp" and the limit window
    });

    // ── issue #13: counts at a time, the client's own refs, key rotation, events ──

    it("counts what is valid at a given time: notBefore ≤ t < notAfter", async () => {
      const c = await registered();
      await store.addKeypackages(c, [
        kp({ notAfter: NOW + 5 * DAY }),
        kp({ notAfter: NOW + 20 * DAY }),
        kp({ notBefore: NOW + 2 * DAY, notAfter: NOW + 30 * DAY }),
        kp({ lastResort: true, notAfter: NOW + 10 * DAY }),
      ]);
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 2, lastResort: 1 });
      expect(await store.countKeypackages(c, 1, NOW + 2 * DAY)).toEqual({ regular: 3, lastResort: 1 });
      // notAfter is exclusive, notBefore inclusive
      expect(await store.countKeypackages(c, 1, NOW + 5 * DAY - 1)).toEqual({ regular: 3, lastResort: 1 });
      expect(await store.countKeypackages(c, 1, NOW + 5 * DAY)).toEqual({ regular: 2, lastResort: 1 });
      expect(await store.countKeypackages(c, 1, NOW + 14 * DAY)).toEqual({ regular: 2, lastResort: 0 });
      expect(await store.countKeypackages(c, 1, NOW + 30 * DAY)).toEqual({ regular: 0, lastResort: 0 });
    });

    it("lists a client's own packages by ref, paginated, per suite; never another client's", async () => {
      const userId = randomUserId();
      const c = await registered(userId);
      const other = await registered(userId);
      const mine = [
        ...Array.from({ length: 7 }, () => kp()),
        kp({ lastResort: true, notBefore: NOW - 10, notAfter: NOW + 99 }),
        kp({ ciphersuite: 2 }),
        kp({ ciphersuite: 2 }),
      ];
      await store.addKeypackages(c, mine);
      await store.addKeypackages(other, [kp(), kp()]);
      const all: string[] = [];
      let after: Uint8Array | undefined;
      for (let page = 0; ; page++) {
        const r = await store.listKeypackages(c, { limit: 3, ...(after !== undefined ? { after } : {}) });
        expect(r.keyPackages.length).toBeLessThanOrEqual(3);
        all.push(...r.keyPackages.map((k) => hex(k.ref)));
        if (!r.more) break;
        after = r.keyPackages[r.keyPackages.length - 1]?.ref;
        expect(page).toBeLessThan(5);
      }
      expect(all).toEqual(mine.map((p) => hex(p.ref)).sort());
      const one = await store.listKeypackages(c, { limit: 100, ciphersuite: 1 });
      expect(one.more).toBe(false);
      expect(one.keyPackages).toHaveLength(8);
      const lr = one.keyPackages.find((k) => k.lastResort);
      expect(lr).toEqual({
        ref: mine[7]?.ref,
        ciphersuite: 1,
        lastResort: true,
        notBefore: NOW - 10,
        notAfter: NOW + 99,
      });
      expect((await store.listKeypackages(c, { limit: 100, ciphersuite: 2 })).keyPackages).toHaveLength(2);
      // exactly a full last page: no `more`
      const exact = await store.listKeypackages(c, { limit: 10 });
      expect(exact).toMatchObject({ more: false });
      expect(exact.keyPackages).toHaveLength(10);
      const unknown = client();
      expect(await store.listKeypackages(unknown, { limit: 10 })).toEqual({ keyPackages: [], more: false });
    });

    it("claims report the regular packages left to the owner", async () => {
      const userId = randomUserId();
      const owner = await registered(userId);
      const claimer = await registered();
      await store.addKeypackages(owner, [kp(), kp(), kp({ notBefore: NOW + 60 }), kp({ lastResort: true })]);
      const first = await store.claim(userId, 1, claimer.clientId, NOW);
      expect(first?.keyPackages.map((k) => [k.lastResort, k.remaining])).toEqual([[false, 1]]);
      const second = await store.claim(userId, 1, claimer.clientId, NOW);
      expect(second?.keyPackages.map((k) => [k.lastResort, k.remaining])).toEqual([[false, 0]]);
      const third = await store.claim(userId, 1, claimer.clientId, NOW);
      expect(third?.keyPackages.map((k) => [k.lastResort, k.remaining])).toEqual([[true, 0]]);
    });

    it("rotates a signature key in one step: old key checked, the suite's packages replaced", async () => {
      const userId = randomUserId();
      const c = await registered(userId);
      const claimer = await registered();
      const oldKey = c.signatureKeys.get(1) as Uint8Array;
      const old = [kp(), kp(), kp({ lastResort: true })];
      const suite2 = kp({ ciphersuite: 2 });
      await store.addKeypackages(c, [...old, suite2]);
      const newKey = rnd(32);
      const fresh = [kp(), kp({ lastResort: true })];
      expect(await store.rotateSignatureKey(c, 1, oldKey, newKey, fresh)).toEqual({ ok: true, deleted: 3 });
      const after = await store.getClient(c.clientId);
      expect(after?.signatureKeys.get(1)).toEqual(newKey);
      expect(after?.signatureKeys.get(2)).toEqual(c.signatureKeys.get(2));
      const listed = (await store.listKeypackages(c, { limit: 10 })).keyPackages
        .map((k) => hex(k.ref))
        .sort();
      expect(listed).toEqual([...fresh, suite2].map((p) => hex(p.ref)).sort());
      // a claim never returns a package of the old key
      const r1 = await store.claim(userId, 1, claimer.clientId, NOW);
      expect(r1?.keyPackages.map((k) => hex(k.ref))).toEqual([hex(fresh[0]!.ref)]);
      const r2 = await store.claim(userId, 1, claimer.clientId, NOW);
      expect(r2?.keyPackages.map((k) => [hex(k.ref), k.lastResort])).toEqual([[hex(fresh[1]!.ref), true]]);
      // the old key is stale now: nothing changes
      expect(await store.rotateSignatureKey(c, 1, oldKey, rnd(32), [kp()])).toEqual({
        ok: false,
        reason: "stale_signature_key",
      });
      expect((await store.getClient(c.clientId))?.signatureKeys.get(1)).toEqual(newKey);
      // a suite without a key, an unknown client: stale too
      expect(await store.rotateSignatureKey(c, 3, oldKey, rnd(32), [])).toEqual({
        ok: false,
        reason: "stale_signature_key",
      });
      expect(await store.rotateSignatureKey(client(), 1, oldKey, rnd(32), [])).toEqual({
        ok: false,
        reason: "stale_signature_key",
      });
      // an empty rotation only deletes
      expect(await store.rotateSignatureKey(c, 1, newKey, rnd(32), [])).toEqual({ ok: true, deleted: 1 });
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 0, lastResort: 0 });
    });

    it("a rotation whose new packages fail rolls back whole (key, deletions, init keys)", async () => {
      const c = await registered();
      const oldKey = c.signatureKeys.get(1) as Uint8Array;
      const seen = kp();
      await store.addKeypackages(c, [seen, kp()]);
      const unused = kp();
      const r = await store.rotateSignatureKey(c, 1, oldKey, rnd(32), [
        unused,
        kp({ initKeyHash: seen.initKeyHash }),
      ]);
      expect(r.ok === false && r.reason).toBe("init_key_reused");
      expect(r.ok === false && r.reason === "init_key_reused" && r.initKeyHashes.map(hex)).toEqual([
        hex(seen.initKeyHash),
      ]);
      expect((await store.getClient(c.clientId))?.signatureKeys.get(1)).toEqual(oldKey);
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 2, lastResort: 0 });
      expect(await store.seenInitKeys([unused.initKeyHash])).toEqual([]);
      const capped = await store.rotateSignatureKey(c, 1, oldKey, rnd(32), [kp(), kp(), kp()], {
        maxStoredPerClient: 2,
      });
      expect(capped).toEqual({ ok: false, reason: "pool_full", stored: 0 });
      expect(await store.countKeypackages(c, 1, NOW)).toEqual({ regular: 2, lastResort: 0 });
      await expect(store.rotateSignatureKey(c, 1, oldKey, rnd(32), [kp({ ciphersuite: 2 })])).rejects.toThrow(
        /own cipher suite/,
      );
    });

    it("uploads validated against a key rotated since are refused (signature_key_changed)", async () => {
      const c = await registered();
      const oldKey = c.signatureKeys.get(1) as Uint8Array;
      const newKey = rnd(32);
      expect((await store.rotateSignatureKey(c, 1, oldKey, newKey, [])).ok).toBe(true);
      // `c` still carries the old key (a stale cache): its suite-1 packages are refused, suite 2 is fine
      const stale = kp();
      expect(await store.addKeypackages(c, [kp({ ciphersuite: 2 }), stale])).toEqual({
        ok: false,
        reason: "signature_key_changed",
        ciphersuites: [1],
      });
      expect(await store.seenInitKeys([stale.initKeyHash])).toEqual([]);
      expect((await store.addKeypackages(c, [kp({ ciphersuite: 2 })])).ok).toBe(true);
      const current = { ...c, signatureKeys: new Map(c.signatureKeys).set(1, newKey) };
      expect(await store.addKeypackages(current, [kp()])).toEqual({ ok: true, removed: 0 });
    });

    it("a rotation racing uploads of the old key on parallel connections leaves no old-key package", async () => {
      const userId = randomUserId();
      const c = await registered(userId);
      const oldKey = c.signatureKeys.get(1) as Uint8Array;
      const newKey = rnd(32);
      const withNew = { ...c, signatureKeys: new Map(c.signatureKeys).set(1, newKey) };
      await store.addKeypackages(c, [kp(), kp(), kp({ lastResort: true })]);
      const ps = await peers(4);
      const oldUploads = Array.from({ length: 12 }, () => [kp(), kp()]);
      const newUploads = Array.from({ length: 6 }, () => [kp()]);
      const rotated = [kp(), kp(), kp({ lastResort: true })];
      type R = { kind: "old" | "new" | "rotate"; refs: string[]; ok: boolean; reason?: string };
      const calls: ((s: DeliveryServiceStore) => Promise<R>)[] = [];
      const refsOf = (pkgs: NewDsKeypackage[]) => pkgs.map((p) => hex(p.ref));
      oldUploads.forEach((pkgs, i) => {
        calls.push(async (s) => {
          const r = await s.addKeypackages(c, pkgs);
          return { kind: "old", refs: refsOf(pkgs), ok: r.ok, ...(r.ok ? {} : { reason: r.reason }) };
        });
        if (i === 5)
          calls.push(async (s) => {
            const r = await s.rotateSignatureKey(c, 1, oldKey, newKey, rotated);
            return { kind: "rotate", refs: refsOf(rotated), ok: r.ok };
          });
        if (i % 2 === 1) {
          const mine = newUploads[(i - 1) / 2] as NewDsKeypackage[];
          calls.push(async (s) => {
            const r = await s.addKeypackages(withNew, mine);
            return { kind: "new", refs: refsOf(mine), ok: r.ok, ...(r.ok ? {} : { reason: r.reason }) };
          });
        }
      });
      const results = await spread(ps, calls);
      expect(results.find((r) => r.kind === "rotate")?.ok).toBe(true);
      // every refused upload was refused for its key, nothing else
      for (const r of results.filter((x) => !x.ok)) expect(r.reason).toBe("signature_key_changed");
      const stored = new Set(
        (await store.listKeypackages(c, { limit: 1000, ciphersuite: 1 })).keyPackages.map((k) => hex(k.ref)),
      );
      const allowed = new Set([
        ...refsOf(rotated),
        ...results.filter((r) => r.kind === "new" && r.ok).flatMap((r) => r.refs),
      ]);
      expect([...stored].filter((ref) => !allowed.has(ref))).toEqual([]);
      for (const ref of refsOf(rotated)) expect(stored.has(ref)).toBe(true);
      for (const r of results.filter((x) => x.kind === "new" && x.ok))
        for (const ref of r.refs) expect(stored.has(ref)).toBe(true);
      expect((await store.getClient(c.clientId))?.signatureKeys.get(1)).toEqual(newKey);
      expect(await store.countKeypackages(c, 1, NOW)).toMatchObject({ lastResort: 1 });
    });

    it("concurrent rotations from one old key: exactly one wins", async () => {
      const c = await registered();
      const oldKey = c.signatureKeys.get(1) as Uint8Array;
      await store.addKeypackages(c, [kp(), kp()]);
      const ps = await peers(5);
      const keys = Array.from({ length: 5 }, () => rnd(32));
      const packages = keys.map(() => [kp()]);
      const results = await spread(
        ps,
        keys.map((k, i) => (s: DeliveryServiceStore) => s.rotateSignatureKey(c, 1, oldKey, k, packages[i]!)),
      );
      const won = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(won).toHaveLength(1);
      expect(results.filter((r) => !r.ok && r.reason === "stale_signature_key")).toHaveLength(4);
      const w = won[0] as number;
      expect((await store.getClient(c.clientId))?.signatureKeys.get(1)).toEqual(keys[w]);
      expect((await store.listKeypackages(c, { limit: 10 })).keyPackages.map((k) => hex(k.ref))).toEqual([
        hex(packages[w]![0]!.ref),
      ]);
    });

    it("its event bus delivers published events to every subscriber, until unsubscribed", async () => {
      if (store.eventBus === undefined) throw new Error("the store has no event bus");
      const a = store.eventBus();
      const b = store.eventBus();
      try {
        await a.ready?.();
        await b.ready?.();
        const gotA: unknown[] = [];
        const gotB: unknown[] = [];
        a.subscribe((e) => gotA.push(e));
        const offB = b.subscribe((e) => gotB.push(e));
        const e1 = { kind: "rotated", clientId: "x", ciphersuite: 1, deleted: 2 } as const;
        const e2 = {
          kind: "claimed",
          clientId: "y",
          ciphersuite: 1,
          ref: "ab",
          lastResort: false,
          remaining: 3,
        } as const;
        await a.publish([e1, e2]);
        await expect.poll(() => gotB.length, { timeout: 10_000 }).toBe(2);
        await expect.poll(() => gotA.length, { timeout: 10_000 }).toBe(2);
        expect(gotB).toEqual([e1, e2]);
        offB();
        await b.publish([e1]);
        await expect.poll(() => gotA.length, { timeout: 10_000 }).toBe(3);
        expect(gotB).toHaveLength(2);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("purges in bounded batches", async () => {
      const c = await registered();
      await store.addKeypackages(c, [...Array.from({ length: 25 }, () => kp({ notAfter: NOW - 1 })), kp()]);
      expect(await store.purgeExpired(NOW, { batchSize: 10, pauseMs: 1 })).toEqual({
        keypackages: 25,
        initKeys: 25,
        claimRecords: 0,
      });
      expect(await store.poolSizes(NOW)).toEqual([{ ciphersuite: 1, lastResort: false, count: 1 }]);
    });
  });
}
