import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { PostgresDsStore } from "../../src/ds/postgresStore.js";
import { openStore } from "../../src/ds/open.js";
import { describeStoreContract } from "./store.contract.js";
import { PG_URL, dropSchema, randomUserId, uniqueSchema } from "./helpers.js";

describeStoreContract("PostgreSQL", async () => {
  const schema = uniqueSchema("store");
  const store = await openStore(PG_URL, { pgSchema: schema, pgPoolSize: 8 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await dropSchema(schema);
    },
  };
});

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
