/**
 * Crash safety for real: a child process commits big transactions in a loop and is
 * SIGKILLed at random moments; after every kill the file must hold exactly a committed prefix.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { inspectFile, spawnWriter } from "./fixtures/child.js";

const KILLS = 50;
const BATCH = 150; // key packages per transaction (450 private/public rows + the kv sequence)

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ks-crash-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it(`survives ${KILLS} SIGKILLs mid-write with a consistent committed prefix`, async () => {
  const path = join(dir, "crash.db");
  const key = DatabaseKey.generate();
  let seq = 0;
  let killedMidRun = 0;
  for (let i = 0; i < KILLS; i++) {
    const w = spawnWriter({ KS_PATH: path, KS_MODE: "loop", KS_BATCH: String(BATCH), KS_WRITER: "0" }, key);
    if (i % 10 === 9) {
      // Now and then kill early: during start-up, key check or open.
      await sleep(Math.random() * 300);
    } else {
      await w.ready;
      await sleep(50 + Math.random() * 350);
    }
    w.child.kill("SIGKILL");
    const exit = await w.exited;
    expect(exit.signal, exit.stderr).toBe("SIGKILL");

    const state = await inspectFile(path, key, ["0"]);
    expect(state.integrity).toEqual(["ok"]);
    const now = state.seq["0"] ?? 0;
    // Everything reported committed is there; at most the one in flight on top of it.
    expect(now).toBeGreaterThanOrEqual(w.lastCommitted());
    expect(now).toBeLessThanOrEqual(Math.max(w.lastCommitted(), seq) + 1);
    expect(now).toBeGreaterThanOrEqual(seq);
    if (now > w.lastCommitted() && w.lastCommitted() > 0) killedMidRun++;
    seq = now;
    expect(state.counts.keypackages).toBe(BATCH * seq);
    expect(state.counts.hpke_private_keys).toBe(BATCH * seq);
    expect(state.counts.encryption_keypairs).toBe(BATCH * seq);
    expect(state.counts.kv).toBe(seq > 0 ? 1 : 0);
    expect(state.orphanKeypackages).toBe(0);
    expect(state.orphanPrivateRows).toBe(0);
  }
  // The loop did write a lot, across many runs.
  expect(seq).toBeGreaterThan(KILLS);
  console.log(
    `crash test: ${KILLS} kills, ${seq} batches (${seq * BATCH} key packages) committed; ${killedMidRun} kills landed after a commit the child had not reported yet`,
  );
}, 180_000);
