import { afterEach, describe, expect, it } from "vitest";
import {
  DeliveryServiceError,
  MlsKeypackagesError,
  POOL_DEFAULTS,
  type PoolDeliveryService,
} from "../../src/index.js";
import { craft } from "../ds/helpers.js";
import { DAY, PoolDevice, SUITE1, TestClock, claimAndWelcome, claimN, startDs, waitFor } from "./helpers.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(kind: "sqlite" | "postgres" = "sqlite") {
  const clock = new TestClock(Date.now());
  const ds = await startDs(clock, kind);
  cleanups.push(ds.close);
  const alice = await PoolDevice.create(ds.url, clock);
  const bob = await PoolDevice.create(ds.url, clock);
  return { clock, ds, alice, bob };
}

describe("KeypackagePool options", () => {
  it("fills in the documented defaults and refuses bad options with TypeErrors", async () => {
    const { alice } = await setup();
    const pool = alice.pool();
    expect(pool.options).toEqual({
      credential: alice.credRef,
      target: 100,
      lowWater: 25,
      rotateBefore: 14 * DAY,
      lastResort: true,
      gracePeriod: 7 * DAY,
      lifetime: 84 * DAY,
    });
    expect(POOL_DEFAULTS.target).toBe(100);
    expect(() => alice.pool({ target: 0 })).toThrow(TypeError);
    expect(() => alice.pool({ target: 10, lowWater: 11 })).toThrow(/lowWater/);
    expect(() => alice.pool({ lowWater: 0 })).toThrow(/lowWater/);
    expect(() => alice.pool({ rotateBefore: 30 * DAY, lifetime: 30 * DAY })).toThrow(/rotateBefore/);
    expect(() => alice.pool({ gracePeriod: -1 })).toThrow(/gracePeriod/);
    expect(() => alice.pool({ lifetime: 100 * DAY })).toThrow(/lifetime/);
    expect(() => alice.cc.keypackagePool({ ds: {} as never, credential: alice.credRef })).toThrow(/ds/);
    expect(() => alice.cc.keypackagePool({ ds: alice.ds, credential: "x" as never })).toThrow(/credential/);
    // a small lifetime lowers the default rotation margin
    expect(alice.pool({ lifetime: 2 * DAY }).options.rotateBefore).toBe(DAY);
  });
});

describe("KeypackagePool.sync (SQLite DS)", () => {
  it("tops up to target with one last-resort package, then does nothing with one request", async () => {
    const { alice, bob } = await setup();
    const pool = alice.pool({ target: 30, lowWater: 10 });
    const r1 = await pool.sync();
    expect(r1).toMatchObject({
      generated: 31,
      uploaded: 31,
      rotated: 0,
      deletedOnDs: 0,
      lastResort: "created",
      dsCount: 30,
      dsCountAtHorizon: 30,
      reconciled: true,
    });
    expect(await alice.ds.count(SUITE1)).toEqual({ count: 30, lastResort: 1 });

    const r2 = await pool.sync();
    expect(r2).toMatchObject({
      generated: 0,
      uploaded: 0,
      reconciled: false,
      requests: 1,
      lastResort: "present",
    });

    // 21 claimed: 9 left < lowWater 10 → top up to 30
    expect(await claimN(bob, alice, 21)).toHaveLength(21);
    const r3 = await pool.sync();
    expect(r3).toMatchObject({ generated: 21, uploaded: 21, dsCount: 30, lastResort: "present" });
    expect(await alice.ds.count(SUITE1)).toEqual({ count: 30, lastResort: 1 });
    // the claimed packages are kept locally (a Welcome may be in flight)
    expect((await alice.localRefs()).size).toBe(31 + 21);
    const status = await pool.status();
    expect(status).toMatchObject({
      dsCount: 30,
      dsLastResort: 1,
      rotationPending: false,
      belowLowWater: false,
    });
    expect(status.local).toMatchObject({ up: 31, gone: 21, new: 0, sending: 0 });
  });

  it("replaces packages expiring within rotateBefore: new ones uploaded, old ones deleted on the DS, pruned after the grace period", async () => {
    const { alice, clock } = await setup();
    const pool = alice.pool({ target: 10, lowWater: 3 });
    await pool.sync();
    const first = await alice.localRefs();
    clock.advance(84 * DAY - 14 * DAY + DAY); // every package expires within 13 days
    const r = await pool.sync();
    expect(r).toMatchObject({
      rotated: 10,
      generated: 11,
      uploaded: 11,
      lastResort: "replaced",
      dsCount: 10,
    });
    expect(r.deletedOnDs).toBe(10); // the old last resort was superseded by the new one
    const onDs = await alice.ds.listAllKeypackages(SUITE1);
    expect(onDs).toHaveLength(11);
    for (const k of onDs) expect(first.has(k.ref)).toBe(false);
    expect(onDs.every((k) => k.notAfter * 1000 > clock.t + 14 * DAY)).toBe(true);
    // old ones kept locally during the grace period
    expect((await alice.localRefs()).size).toBe(22);
    clock.advance(6 * DAY);
    expect((await pool.sync()).prunedLocally).toBe(0);
    clock.advance(DAY + 1000);
    const pruned = await pool.sync();
    expect(pruned.prunedLocally).toBe(11);
    const local = await alice.localRefs();
    expect(local.size).toBe(11);
    for (const ref of first) expect(local.has(ref)).toBe(false);
  });

  it("reconciles: refs on the DS without local keys are deleted there; local packages never uploaded are uploaded", async () => {
    const { alice } = await setup();
    const pool = alice.pool({ target: 5, lowWater: 2 });
    await pool.sync();
    // a package with our signature key whose private keys we do not have (e.g. a lost keystore)
    const now = Math.floor(Date.now() / 1000);
    const stray = await craft(alice.credential, { notBefore: now - 60, notAfter: now + 30 * 86400 });
    const up = await alice.ds.upload([stray]);
    const strayRef = up.refs[0] as string;
    // a package generated locally outside the pool, never uploaded
    const mine = await alice.cc.transaction((tx) => tx.generateKeypackage(alice.credRef));
    const r = await pool.sync();
    expect(r.reconciled).toBe(true);
    expect(r.deletedOnDs).toBe(1);
    expect(r.uploaded).toBe(1);
    const refs = new Set((await alice.ds.listAllKeypackages(SUITE1)).map((k) => k.ref));
    expect(refs.has(strayRef)).toBe(false);
    expect(refs.has(mine.ref().hex())).toBe(true);
    expect(refs.size).toBe(7);
    const local = await alice.localRefs();
    for (const ref of refs) expect(local.has(ref)).toBe(true);
  });

  it("keeps a claimed package usable for the grace period: the Welcome is processed after the sync noticed the claim", async () => {
    const { alice, bob, clock } = await setup();
    await bob.pool({ target: 2, lowWater: 1 }).sync();
    const pool = alice.pool({ target: 5, lowWater: 5, gracePeriod: 2 * DAY });
    await pool.sync();
    const { ref, welcome } = await claimAndWelcome(bob, alice);
    const r = await pool.sync(); // notices the claim (and tops up): the package is gone from the DS
    expect(r.generated).toBe(1);
    expect((await pool.status()).local.gone).toBe(1);
    clock.advance(DAY);
    await pool.sync();
    expect((await alice.localRefs()).has(ref)).toBe(true);
    // the Welcome arrives within the grace period
    const convId = await alice.cc.transaction((tx) => tx.processWelcomeMessage(welcome));
    expect(await alice.cc.transaction((tx) => tx.conversationExists(convId))).toBe(true);
    expect(pool.consumedCount).toBe(1);
    // a claimed package whose Welcome never came is removed after the grace period
    const second = await claimAndWelcome(bob, alice);
    await pool.sync();
    clock.advance(2 * DAY + 1000);
    const pruned = await pool.sync();
    expect(pruned.prunedLocally).toBe(1);
    await expect(alice.cc.transaction((tx) => tx.processWelcomeMessage(second.welcome))).rejects.toThrow(
      /OrphanWelcome|none of the/,
    );
  });

  it("welcome hook: a Welcome on the last-resort package makes the next sync replace it (RFC 9750)", async () => {
    const { alice, bob } = await setup();
    await bob.pool({ target: 1, lowWater: 1 }).sync();
    const pool = alice.pool({ target: 2, lowWater: 1 });
    await pool.sync();
    const events: unknown[] = [];
    const off = alice.cc.onKeypackageConsumed((e) => events.push(e));
    await claimN(bob, alice, 2); // the regular ones
    const { lastResort, ref, welcome } = await claimAndWelcome(bob, alice);
    expect(lastResort).toBe(true);
    // the DS still hands the same last-resort package out
    expect((await alice.ds.listAllKeypackages(SUITE1)).map((k) => k.ref)).toEqual([ref]);
    await alice.cc.transaction((tx) => tx.processWelcomeMessage(welcome));
    off();
    expect(events).toEqual([expect.objectContaining({ lastResort: true, refs: [] })]);
    expect(pool.consumedCount).toBe(1);
    const r = await pool.sync(); // waits for the hook's bookkeeping
    expect(r.lastResort).toBe("replaced");
    const onDs = await alice.ds.listAllKeypackages(SUITE1);
    expect(onDs.filter((k) => k.lastResort)).toHaveLength(1);
    expect(onDs.some((k) => k.ref === ref)).toBe(false);
    // the regular Welcome hook: a consumed regular package is reported with its ref
    const events2: { refs: string[] }[] = [];
    alice.cc.onKeypackageConsumed((e) => events2.push(e));
    const w2 = await claimAndWelcome(bob, alice);
    await alice.cc.transaction((tx) => tx.processWelcomeMessage(w2.welcome));
    expect(events2).toEqual([expect.objectContaining({ refs: [w2.ref], lastResort: false })]);
  });

  it("refuses a pool on a credential that is not the one in use, and finds the rotated one after a restart", async () => {
    const { alice } = await setup();
    const pool = alice.pool({ target: 3, lowWater: 1 });
    await pool.sync();
    const next = await alice.newCredential();
    await pool.rotateCredential(next);
    // a restarted app passes the old credential: the pool continues with the new one
    const again = alice.pool({ target: 3, lowWater: 1 });
    expect((await again.credential()).id).toBe(next.id);
    const r = await again.sync();
    expect(r.reconciled).toBe(true);
    expect(r.uploaded).toBe(0);
    // a third, never used credential is refused
    const other = await alice.newCredential();
    await expect(alice.cc.keypackagePool({ ds: alice.ds, credential: other }).sync()).rejects.toThrow(
      MlsKeypackagesError,
    );
  });
});

describe("KeypackagePool.rotateCredential", () => {
  for (const kind of ["sqlite", "postgres"] as const) {
    it(`swaps key and packages on the DS atomically; a Welcome in flight still joins (${kind})`, async () => {
      const { alice, bob, clock } = await setup(kind);
      await bob.pool({ target: 2, lowWater: 1 }).sync();
      const pool = alice.pool({ target: 8, lowWater: 3, gracePeriod: 3 * DAY });
      const first = await pool.sync();
      expect(first.uploaded).toBe(9);
      const oldRefs = await alice.localRefs();

      // Bob claims one of Alice's packages and sends a Welcome that has not arrived yet
      const inFlight = await claimAndWelcome(bob, alice);
      expect(oldRefs.has(inFlight.ref)).toBe(true);

      const next = await alice.newCredential();
      const r = await pool.rotateCredential(next);
      expect(r.generated).toBe(9);
      expect((await pool.credential()).id).toBe(next.id);
      const onDs = await alice.ds.listAllKeypackages(SUITE1);
      expect(onDs).toHaveLength(9);
      for (const k of onDs) expect(oldRefs.has(k.ref)).toBe(false);
      expect(await alice.ds.count(SUITE1)).toEqual({ count: 8, lastResort: 1 });

      // a package claimed now is bound to the new key and joinable
      const fresh = await claimAndWelcome(bob, alice);
      expect(oldRefs.has(fresh.ref)).toBe(false);
      await alice.cc.transaction((tx) => tx.processWelcomeMessage(fresh.welcome));

      // the in-flight Welcome (old credential) still processes during the grace period
      clock.advance(DAY);
      await pool.sync();
      const convId = await alice.cc.transaction((tx) => tx.processWelcomeMessage(inFlight.welcome));
      expect(await alice.cc.transaction((tx) => tx.conversationExists(convId))).toBe(true);

      // after the grace period the old packages are gone locally; uploads keep working (new key)
      clock.advance(3 * DAY);
      const later = await pool.sync();
      expect(later.prunedLocally).toBe(oldRefs.size - 1);
      const local = await alice.localRefs();
      for (const ref of oldRefs) expect(local.has(ref)).toBe(false);
      await claimN(bob, alice, 6);
      const topUp = await pool.sync();
      expect(topUp.uploaded).toBeGreaterThan(0);
      expect(await alice.ds.count(SUITE1)).toEqual({ count: 8, lastResort: 1 });
    });
  }

  it("finishes an interrupted rotation on the next sync (the DS already has the new key)", async () => {
    const { alice, bob } = await setup();
    await alice.pool({ target: 4, lowWater: 1 }).sync();
    const oldRefs = await alice.localRefs();
    // the DS rotates, but the answer is lost (as if the process died right after the call)
    const real = alice.ds;
    const lossy: PoolDeliveryService = {
      get clientId() {
        return real.clientId;
      },
      count: (s, o) => real.count(s, o),
      listAllKeypackages: (s) => real.listAllKeypackages(s),
      upload: (k) => real.upload(k),
      delete: (r) => real.delete(r),
      events: (o) => real.events(o),
      rotateSignatureKey: async (o) => {
        await real.rotateSignatureKey(o);
        throw new DeliveryServiceError(0, "network", "answer lost");
      },
    };
    const next = await alice.newCredential();
    const crashed = alice.cc.keypackagePool({ ds: lossy, credential: alice.credRef, target: 4, lowWater: 1 });
    await expect(crashed.rotateCredential(next)).rejects.toThrow(/answer lost/);
    expect((await crashed.status()).rotationPending).toBe(true);
    // a restarted pool finishes it
    const pool = alice.pool({ target: 4, lowWater: 1 });
    const r = await pool.sync();
    expect(r.reconciled).toBe(true);
    expect((await pool.credential()).id).toBe(next.id);
    const onDs = await alice.ds.listAllKeypackages(SUITE1);
    expect(onDs).toHaveLength(5);
    const local = await alice.localRefs();
    for (const k of onDs) {
      expect(local.has(k.ref)).toBe(true);
      expect(oldRefs.has(k.ref)).toBe(false);
    }
    expect((await pool.status()).local).toMatchObject({ up: 5, gone: 5, rotating: 0, sending: 0 });
    // and the next rotation starts from the new key
    const third = await alice.newCredential();
    await pool.rotateCredential(third);
    expect((await pool.credential()).id).toBe(third.id);
    expect(await alice.ds.count(SUITE1)).toEqual({ count: 4, lastResort: 1 });
    const w = await claimAndWelcome(bob, alice);
    await alice.cc.transaction((tx) => tx.processWelcomeMessage(w.welcome));
  });
});

describe("KeypackagePool.run", () => {
  it("reacts to a low_water event from the DS without waiting for its timer", async () => {
    const { alice, bob } = await setup();
    const pool = alice.pool({ target: 10, lowWater: 5 });
    const ac = new AbortController();
    const syncs: number[] = [];
    const seen: string[] = [];
    const running = pool.run({
      signal: ac.signal,
      intervalMs: 60 * 60 * 1000,
      onSync: (r) => syncs.push(r.uploaded),
      onEvent: (e) => seen.push(e.type),
    });
    try {
      await waitFor(() => syncs.length >= 1);
      expect(syncs[0]).toBe(11);
      // let the event stream connect, then drain under the low-water mark
      await new Promise((r) => setTimeout(r, 300));
      await claimN(bob, alice, 6);
      await waitFor(async () => (await alice.ds.count(SUITE1)).count === 10);
      expect(seen).toContain("low_water");
      expect(syncs.length).toBeGreaterThanOrEqual(2);
      // a Welcome consuming one of our packages wakes the loop too (the session's hook)
      const w = await claimAndWelcome(bob, alice);
      await new Promise((r) => setTimeout(r, 300)); // whatever the claim's event caused is over
      const before = syncs.length;
      await alice.cc.transaction((tx) => tx.processWelcomeMessage(w.welcome));
      await waitFor(() => syncs.length > before);
      expect(pool.consumedCount).toBe(1);
    } finally {
      ac.abort();
      await running;
    }
  });

  it("replaces the last-resort package soon after the DS reports it handed out", async () => {
    const { alice, bob } = await setup();
    const pool = alice.pool({ target: 2, lowWater: 1 });
    const ac = new AbortController();
    const seen: string[] = [];
    let syncs = 0;
    const running = pool.run({
      signal: ac.signal,
      intervalMs: 60 * 60 * 1000,
      onSync: () => syncs++,
      onEvent: (e) => seen.push(e.type),
    });
    try {
      await waitFor(() => syncs >= 1);
      const before = (await alice.ds.listAllKeypackages(SUITE1)).find((k) => k.lastResort);
      expect(before).toBeDefined();
      await new Promise((r) => setTimeout(r, 300)); // let the event stream connect
      // claim until the DS hands out the last resort (the pool refills the regular ones meanwhile)
      let gotLastResort = false;
      for (let i = 0; i < 50 && !gotLastResort; i++) {
        const [k] = await claimN(bob, alice, 1);
        gotLastResort = k?.lastResort === true;
      }
      expect(gotLastResort).toBe(true);
      await waitFor(async () => {
        const lr = (await alice.ds.listAllKeypackages(SUITE1)).filter((k) => k.lastResort);
        return lr.length === 1 && lr[0]?.ref !== before?.ref;
      });
      expect(seen).toContain("last_resort_claimed");
      // the handed-out one is kept locally for the grace period (its Welcome may come)
      expect((await alice.localRefs()).has(before!.ref)).toBe(true);
    } finally {
      ac.abort();
      await running;
    }
  });

  it("backs off on DS errors and never rejects", async () => {
    const clock = new TestClock(Date.now());
    const ds = await startDs(clock);
    const alice = await PoolDevice.create(ds.url, clock);
    const pool = alice.pool({ target: 3, lowWater: 1 });
    await ds.close(); // the DS is gone
    const ac = new AbortController();
    const errors: unknown[] = [];
    const running = pool.run({
      signal: ac.signal,
      backoff: { initialMs: 20, maxMs: 100 },
      onError: (e) => errors.push(e),
    });
    await waitFor(() => errors.length >= 4);
    ac.abort();
    await expect(running).resolves.toBeUndefined();
  });
});
