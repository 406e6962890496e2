/**
 * The pool simulation, small (10 clients, 20 simulated days; `npm run simulate` runs 200 × 120):
 * the pool never hands out an expired or stale package and no Welcome hits OrphanWelcome, through
 * crashes, absences and credential rotations; the naive policy on the same schedule does hand
 * out packages whose private keys are gone (after the README's old rotation), and its joiners
 * hit OrphanWelcome.
 */
import { describe, expect, it } from "vitest";
import { simulate } from "../../bench/simulate/run.js";
import { DEFAULT_CONFIG } from "../../bench/simulate/schedule.js";

describe("key package pool simulation (10 clients × 20 days)", () => {
  it("pool: 0 orphan Welcomes, 0 expired or stale packages; naive: stale packages and orphan Welcomes after rotation", async () => {
    const r = await simulate({ ...DEFAULT_CONFIG, clients: 10, days: 20, seed: 13 });
    const pool = r.pool.counters;
    const naive = r.naive.counters;
    // The schedule really exercised what matters.
    expect(pool.rotations).toBeGreaterThan(0);
    expect(pool.crashes).toBeGreaterThan(0);
    expect(pool.welcomesFull).toBeGreaterThan(0);
    expect(pool.handedOut).toBe(naive.handedOut + naive.exhausted - pool.exhausted);
    // The pool.
    expect(pool.syncErrors).toBe(0);
    expect(pool.orphanWelcomes).toBe(0);
    expect(pool.expiredAtJoin).toBe(0);
    expect(pool.expiredHandedOut).toBe(0);
    expect(pool.staleNoPrivateKey).toBe(0);
    expect(pool.staleOldKey).toBe(0);
    expect(pool.exhausted).toBe(0);
    // The naive policy: the failure the issue describes.
    expect(naive.rotations).toBe(pool.rotations);
    expect(naive.staleNoPrivateKey).toBeGreaterThan(0);
    expect(naive.staleOldKey).toBeGreaterThan(0);
    expect(naive.orphanWelcomes).toBeGreaterThan(0);
    expect(r.naiveExtras.uploadsRefused).toBeGreaterThan(0);
    expect(r.naiveExtras.reRegisterRefused).toBe(naive.rotations);
  }, 900_000);
});
