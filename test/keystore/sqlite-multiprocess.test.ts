/** Two processes writing one SQLite file at once: nothing lost, nothing half-written. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DatabaseKey } from "../../src/keystore/databaseKey.js";
import { openSqliteKeystore } from "../../src/keystore/sqlite.js";
import { inspectFile, spawnWriter } from "./fixtures/child.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ks-multi-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("two processes committing Keystore transactions concurrently: counts are the sum", async () => {
  const path = join(dir, "keystore.db");
  const key = DatabaseKey.generate();
  const TXS = 40;
  const BATCH = 50;
  const writers = ["1", "2"].map((id) =>
    spawnWriter(
      { KS_PATH: path, KS_MODE: "count", KS_BATCH: String(BATCH), KS_TXS: String(TXS), KS_WRITER: id },
      key,
    ),
  );
  const exits = await Promise.all(writers.map((w) => w.exited));
  for (const e of exits) expect(e.code, e.stderr).toBe(0);
  const state = await inspectFile(path, key, ["1", "2"]);
  expect(state.integrity).toEqual(["ok"]);
  expect(state.seq).toEqual({ "1": TXS, "2": TXS });
  expect(state.counts.keypackages).toBe(2 * TXS * BATCH);
  expect(state.counts.hpke_private_keys).toBe(2 * TXS * BATCH);
  expect(state.counts.encryption_keypairs).toBe(2 * TXS * BATCH);
  expect(state.orphanKeypackages + state.orphanPrivateRows).toBe(0);
  const ks = await openSqliteKeystore(path, key);
  expect(await ks.keypackageRefsForCredential("writer-1")).toHaveLength(TXS * BATCH);
  expect(await ks.keypackageRefsForCredential("writer-2")).toHaveLength(TXS * BATCH);
  await ks.close();
});

it("two processes generating key packages through the public API concurrently", async () => {
  const path = join(dir, "api.db");
  const key = DatabaseKey.generate();
  const TXS = 15;
  const PER_TX = 4;
  const writers = ["1", "2"].map((id) =>
    spawnWriter(
      { KS_PATH: path, KS_MODE: "api", KS_BATCH: String(PER_TX), KS_TXS: String(TXS), KS_WRITER: id },
      key,
    ),
  );
  const exits = await Promise.all(writers.map((w) => w.exited));
  for (const e of exits) expect(e.code, e.stderr).toBe(0);
  for (const w of writers) expect(w.lastCommitted()).toBe(TXS);

  const state = await inspectFile(path, key, []);
  expect(state.integrity).toEqual(["ok"]);
  expect(state.counts.credentials).toBe(2 * TXS);
  expect(state.counts.keypackages).toBe(2 * TXS * PER_TX);
  expect(state.counts.hpke_private_keys).toBe(2 * TXS * PER_TX);
  expect(state.counts.encryption_keypairs).toBe(2 * TXS * PER_TX);
  expect(state.orphanKeypackages + state.orphanPrivateRows).toBe(0);

  // Read back through the public API: every credential has exactly its packages, all parse.
  const { CoreCrypto, Database } = await import("../../src/index.js");
  const cc = await CoreCrypto.open(await Database.open(path, key));
  await cc.transaction(async (tx) => {
    const creds = await tx.findCredentials();
    expect(creds).toHaveLength(2 * TXS);
    const refs = await tx.getKeypackageRefs();
    expect(refs).toHaveLength(2 * TXS * PER_TX);
    const kp = await tx.getKeypackage(refs[0] as (typeof refs)[number]);
    expect(kp).toBeDefined();
  });
  const ks = cc.database.keystore;
  for (const row of await ks.all("credentials"))
    expect(await ks.keypackageRefsForCredential(row.id)).toHaveLength(PER_TX);
  await cc.close();
});
