import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3-multiple-ciphers";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { openStore } from "../../src/ds/open.js";
import { describeStoreContract } from "./store.contract.js";
import { StoreProcesses } from "./remoteStore.js";

describeStoreContract("SQLite :memory:", async () => {
  const store = new SqliteDsStore(":memory:");
  await store.init();
  return { store, cleanup: () => store.close() };
});

const processes = new StoreProcesses();
afterAll(() => processes.stop());

describeStoreContract("SQLite file (WAL)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
  const path = join(dir, "ds.db");
  const store = await openStore(path);
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
    // each peer is another process with its own connection to the file
    peers: (n) => processes.open(path, Math.min(n, 3)),
  };
});

describe("SQLite file store", () => {
  it("keeps its data across reopen", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
    try {
      const path = join(dir, "ds.db");
      const a = await openStore(path);
      expect(a.kind).toBe("sqlite");
      const tokenHash = new Uint8Array(32).fill(7);
      await a.createClient({
        clientId: "c",
        userId: "u",
        signatureKeys: new Map([[1, new Uint8Array(32)]]),
        createdAt: 1,
        tokenHash,
      });
      await a.close();
      const b = await openStore(path);
      expect((await b.clientByTokenHash(tokenHash))?.clientId).toBe("c");
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The schema before issue #12 (version 1, no `ds_meta`). */
const V1_SCHEMA = `
CREATE TABLE ds_clients (client_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE,
  signature_keys TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX ds_clients_user ON ds_clients(user_id);
CREATE TABLE ds_keypackages (id INTEGER PRIMARY KEY AUTOINCREMENT, ref BLOB NOT NULL UNIQUE,
  client_id TEXT NOT NULL REFERENCES ds_clients(client_id), user_id TEXT NOT NULL, ciphersuite INTEGER NOT NULL,
  last_resort INTEGER NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL, key_package BLOB NOT NULL);
CREATE INDEX ds_keypackages_pick ON ds_keypackages(client_id, ciphersuite, last_resort, not_after);
CREATE INDEX ds_keypackages_user_expiry ON ds_keypackages(user_id, not_after);
CREATE INDEX ds_keypackages_expiry ON ds_keypackages(not_after);
CREATE TABLE ds_seen_init_keys (hash BLOB PRIMARY KEY, not_after INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX ds_seen_init_keys_expiry ON ds_seen_init_keys(not_after);
INSERT INTO ds_clients VALUES ('c', 'u', x'01', '{}', 1), ('d', 'u', x'02', '{}', 1);
INSERT INTO ds_keypackages (ref, client_id, user_id, ciphersuite, last_resort, not_before, not_after, key_package) VALUES
  (x'a1', 'c', 'u', 1, 0, 0, 9999999999, x'00'),
  (x'a2', 'c', 'u', 1, 1, 0, 9999999999, x'00'),
  (x'a3', 'c', 'u', 1, 1, 0, 9999999999, x'00'),
  (x'a4', 'c', 'u', 2, 1, 0, 9999999999, x'00');
`;

describe("SQLite schema migration", () => {
  it("migrates a version-1 file: one last-resort package per client and suite (the newest), counters filled", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
    try {
      const path = join(dir, "ds.db");
      const raw = new BetterSqlite3(path);
      raw.exec(V1_SCHEMA);
      raw.close();
      const store = await openStore(path);
      await store.init(); // a second init is a no-op
      expect(await store.poolSizes()).toEqual([
        { ciphersuite: 1, lastResort: false, count: 1 },
        { ciphersuite: 1, lastResort: true, count: 1 },
        { ciphersuite: 2, lastResort: true, count: 1 },
      ]);
      const r = await store.claim("u", 1, "d", 1000);
      expect(r?.keyPackages.map((k) => [Buffer.from(k.ref).toString("hex"), k.lastResort])).toEqual([
        ["a1", false],
      ]);
      const r2 = await store.claim("u", 1, "d", 1000);
      expect(r2?.keyPackages.map((k) => [Buffer.from(k.ref).toString("hex"), k.lastResort])).toEqual([
        ["a3", true],
      ]);
      await store.close();
      const check = new BetterSqlite3(path);
      expect(check.prepare("SELECT value FROM ds_meta WHERE key = 'schema_version'").get()).toEqual({
        value: "2",
      });
      expect(() =>
        check.exec(
          "INSERT INTO ds_keypackages (ref, client_id, user_id, ciphersuite, last_resort, not_before, not_after, key_package) VALUES (x'b1', 'c', 'u', 1, 1, 0, 1, x'00')",
        ),
      ).toThrow(/UNIQUE/);
      check.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a database from a newer version", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
    try {
      const path = join(dir, "ds.db");
      await (await openStore(path)).close();
      const raw = new BetterSqlite3(path);
      raw.exec("UPDATE ds_meta SET value = '3' WHERE key = 'schema_version'");
      raw.close();
      await expect(openStore(path)).rejects.toThrow(/schema version 3/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
