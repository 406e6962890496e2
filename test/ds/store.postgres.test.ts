import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { PostgresDsStore } from "../../src/ds/postgresStore.js";
import { openStore } from "../../src/ds/open.js";
import { describeStoreContract } from "./store.contract.js";
import { PG_URL, dropSchema, randomUserId, uniqueSchema } from "./helpers.js";

/** A fresh schema; peers are more stores on it, each with its own pool. */
async function openPg(tag: string, partitions?: number) {
  const schema = uniqueSchema(tag);
  const store = await openStore(PG_URL, {
    pgSchema: schema,
    pgPoolSize: 8,
    ...(partitions !== undefined ? { pgPartitions: partitions } : {}),
  });
  return {
    schema,
    store,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
    peers: (n: number) =>
      Promise.all(Array.from({ length: n }, () => openStore(PG_URL, { pgSchema: schema, pgPoolSize: 4 }))),
  };
}

describeStoreContract("PostgreSQL", () => openPg("store"));

describeStoreContract("PostgreSQL, ds_keypackages hash-partitioned by user id", () => openPg("part", 4));

describe("PostgreSQL store", () => {
  it("creates its schema from several processes' worth of connections at once", async () => {
    const schema = uniqueSchema("init");
    const stores = Array.from({ length: 4 }, () => new PostgresDsStore(PG_URL, { schema, poolSize: 2 }));
    try {
      await Promise.all(stores.map((s) => s.init()));
      await Promise.all(stores.map((s) => s.ping()));
      expect(stores[0]?.kind).toBe("postgres");
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchema(schema);
    }
  });

  it("refuses an unsafe schema name", () => {
    expect(() => new PostgresDsStore(PG_URL, { schema: "x; drop table y" })).toThrow(/schema/);
  });

  it("creates a hash-partitioned ds_keypackages on request; every key starts with the user id", async () => {
    const { store, cleanup, schema } = await openPg("parts", 4);
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      const leaves = await c.query(
        `SELECT relid FROM pg_partition_tree('${schema}.ds_keypackages'::regclass) WHERE isleaf`,
      );
      expect(leaves.rows).toHaveLength(4);
      const keys = await c.query<{ name: string; def: string }>(
        `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
         WHERE conrelid = '${schema}.ds_keypackages'::regclass ORDER BY conname`,
      );
      expect(keys.rows.map((r) => r.def)).toEqual([
        "FOREIGN KEY (user_id, client_id) REFERENCES " + `${schema}.ds_clients(user_id, client_id)`,
        "PRIMARY KEY (user_id, id)",
        "UNIQUE (user_id, ref)",
      ]);
      const idx = await c.query<{ def: string }>(
        `SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = '${schema}.ds_keypackages'::regclass`,
      );
      for (const { def } of idx.rows) if (!/\(not_after\)/.test(def)) expect(def).toMatch(/\(user_id[,)]/);
      // autovacuum settings on each partition
      const opts = await c.query<{ reloptions: string[] | null }>(
        `SELECT reloptions FROM pg_class WHERE oid IN (SELECT relid FROM pg_partition_tree('${schema}.ds_keypackages'::regclass) WHERE isleaf)`,
      );
      for (const o of opts.rows) expect(o.reloptions).toContain("autovacuum_vacuum_scale_factor=0.01");
    } finally {
      await c.end();
      await cleanup();
    }
    expect(store.kind).toBe("postgres");
  });

  it("migrates a version-1 schema: keys with the user id, one last-resort package per client and suite, counters", async () => {
    const schema = uniqueSchema("mig");
    const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    await c.connect();
    try {
      await c.query(`CREATE SCHEMA ${schema}`);
      await c.query(V1_SCHEMA);
      const stores = [0, 1, 2].map(() => new PostgresDsStore(PG_URL, { schema, poolSize: 2 }));
      await Promise.all(stores.map((s) => s.init())); // several processes starting at once
      const [store] = stores;
      expect(await store!.poolSizes()).toEqual([
        { ciphersuite: 1, lastResort: false, count: 1 },
        { ciphersuite: 1, lastResort: true, count: 1 },
        { ciphersuite: 2, lastResort: true, count: 1 },
      ]);
      const r = await store!.claim("u", 1, "d", 1000);
      expect(r?.keyPackages.map((k) => [Buffer.from(k.ref).toString("hex"), k.lastResort])).toEqual([
        ["a1", false],
      ]);
      const r2 = await store!.claim("u", 1, "d", 1000);
      expect(r2?.keyPackages.map((k) => [Buffer.from(k.ref).toString("hex"), k.lastResort])).toEqual([
        ["a3", true],
      ]);
      const v = await c.query("SELECT value FROM ds_meta WHERE key = 'schema_version'");
      expect(v.rows).toEqual([{ value: "2" }]);
      const pk = await c.query(
        "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'ds_keypackages'::regclass AND contype = 'p'",
      );
      expect(pk.rows).toEqual([{ def: "PRIMARY KEY (user_id, id)" }]);
      await expect(
        c.query(
          "INSERT INTO ds_keypackages (ref, client_id, user_id, ciphersuite, last_resort, not_before, not_after, key_package) VALUES ('\\xb1', 'c', 'u', 1, true, 0, 1, '\\x00')",
        ),
      ).rejects.toThrow(/ds_keypackages_one_last_resort/);
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await c.end();
      await dropSchema(schema);
    }
  });
});

describe("PostgreSQL claims and row locks", () => {
  const NOW = 1_800_000_000;
  const kp = (lastResort: boolean) => ({
    ref: new Uint8Array(randomBytes(32)),
    ciphersuite: 1,
    lastResort,
    notBefore: NOW - 10,
    notAfter: NOW + 1000,
    initKeyHash: new Uint8Array(randomBytes(32)),
    keyPackage: new Uint8Array(randomBytes(64)),
  });

  /** A user with one client holding one regular and one last-resort package, the regular one locked by another transaction. */
  async function lockedSetup() {
    const schema = uniqueSchema("lock");
    const store = await openStore(PG_URL, { pgSchema: schema, pgPoolSize: 4 });
    const userId = randomUserId();
    const client = {
      clientId: `${userId}:1@example.com`,
      userId,
      signatureKeys: new Map(),
      createdAt: NOW,
      tokenHash: new Uint8Array(randomBytes(32)),
    };
    await store.createClient(client);
    const regular = kp(false);
    await store.addKeypackages(client, [regular, kp(true)]);
    const holder = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    await holder.connect();
    await holder.query("BEGIN");
    await holder.query("SELECT id FROM ds_keypackages WHERE NOT last_resort FOR UPDATE");
    const claim = store.claim(userId, 1, "someone-else", NOW);
    let settled = false;
    void claim.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 300));
    return {
      regular,
      holder,
      claim,
      settled: () => settled,
      done: async () => {
        await holder.end();
        await store.close();
        await dropSchema(schema);
      },
    };
  }

  it("a claim waits for a regular package another transaction holds, and gets it if that one rolls back", async () => {
    const t = await lockedSetup();
    try {
      expect(t.settled()).toBe(false); // not answered with the last resort meanwhile
      await t.holder.query("ROLLBACK");
      const r = await t.claim;
      expect(r?.keyPackages.map((k) => [Buffer.from(k.ref).toString("hex"), k.lastResort])).toEqual([
        [Buffer.from(t.regular.ref).toString("hex"), false],
      ]);
    } finally {
      await t.done();
    }
  });

  it("…and falls back to the last resort once that transaction took the regular package", async () => {
    const t = await lockedSetup();
    try {
      expect(t.settled()).toBe(false);
      await t.holder.query("DELETE FROM ds_keypackages WHERE NOT last_resort");
      await t.holder.query("COMMIT");
      const r = await t.claim;
      expect(r?.keyPackages.map((k) => k.lastResort)).toEqual([true]);
    } finally {
      await t.done();
    }
  });
});

/** The schema before issue #12 (version 1, no `ds_meta`), with two last-resort packages of one suite. */
const V1_SCHEMA = `
CREATE TABLE ds_clients (client_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, token_hash BYTEA NOT NULL UNIQUE,
  signature_keys TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX ds_clients_user ON ds_clients(user_id);
CREATE TABLE ds_keypackages (id BIGSERIAL PRIMARY KEY, ref BYTEA NOT NULL UNIQUE,
  client_id TEXT NOT NULL REFERENCES ds_clients(client_id), user_id TEXT NOT NULL, ciphersuite INTEGER NOT NULL,
  last_resort BOOLEAN NOT NULL, not_before BIGINT NOT NULL, not_after BIGINT NOT NULL, key_package BYTEA NOT NULL);
CREATE INDEX ds_keypackages_pick ON ds_keypackages(client_id, ciphersuite, last_resort, not_after, id);
CREATE INDEX ds_keypackages_user_expiry ON ds_keypackages(user_id, not_after);
CREATE INDEX ds_keypackages_expiry ON ds_keypackages(not_after);
CREATE TABLE ds_seen_init_keys (hash BYTEA PRIMARY KEY, not_after BIGINT NOT NULL);
CREATE INDEX ds_seen_init_keys_expiry ON ds_seen_init_keys(not_after);
INSERT INTO ds_clients VALUES ('c', 'u', '\\x01', '{}', 1), ('d', 'u', '\\x02', '{}', 1);
INSERT INTO ds_keypackages (ref, client_id, user_id, ciphersuite, last_resort, not_before, not_after, key_package) VALUES
  ('\\xa1', 'c', 'u', 1, false, 0, 9999999999, '\\x00'),
  ('\\xa2', 'c', 'u', 1, true, 0, 9999999999, '\\x00'),
  ('\\xa3', 'c', 'u', 1, true, 0, 9999999999, '\\x00'),
  ('\\xa4', 'c', 'u', 2, true, 0, 9999999999, '\\x00');
`;

/** The NOTIFY channel of a schema (as postgresStore.ts names it). */
const channelOf = (schema: string) =>
  `mlskp_ds_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`;

describe("PostgreSQL event bus (LISTEN/NOTIFY)", () => {
  const event = (clientId: string) => ({ kind: "rotated", clientId, ciphersuite: 1, deleted: 1 }) as const;

  it("carries events between stores with their own pools, not across schemas, and reconnects its listener", async () => {
    const a = await openPg("busa");
    const b = await openPg("busb");
    const [peer] = await a.peers(1);
    const busA = a.store.eventBus!();
    const busPeer = peer!.eventBus!();
    const busB = b.store.eventBus!();
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await Promise.all([busA.ready?.(), busPeer.ready?.(), busB.ready?.()]);
      const gotA: string[] = [];
      const gotB: string[] = [];
      busA.subscribe((e) => gotA.push(e.clientId));
      busB.subscribe((e) => gotB.push(e.clientId));
      await busPeer.publish([event("one"), event("two")]);
      await expect.poll(() => gotA, { timeout: 10_000 }).toEqual(["one", "two"]);
      // another schema on the same database hears nothing
      await b.store.eventBus!().publish([event("b-only")]);
      await expect.poll(() => gotB, { timeout: 10_000 }).toEqual(["b-only"]);
      expect(gotA).toEqual(["one", "two"]);

      // kill every listening connection: the listener reconnects by itself
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        [`mlskp-ds-listen ${channelOf(a.schema)}`],
      );
      expect(killed.rowCount).toBeGreaterThanOrEqual(1);
      await expect
        .poll(
          async () => {
            await busPeer.publish([event("after")]);
            return gotA.includes("after");
          },
          { timeout: 20_000, interval: 300 },
        )
        .toBe(true);
    } finally {
      await admin.end();
      await Promise.all([busA.close(), busPeer.close(), busB.close()]);
      await peer?.close();
      await a.cleanup();
      await b.cleanup();
    }
  });
});
