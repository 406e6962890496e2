/**
 * Claims over HTTP (issue #12): the per-(claimer, target user) limit, `Idempotency-Key` within one
 * process and across processes, `DeliveryServiceClient` retrying a lost answer under its key, and
 * `/metrics` reading counters instead of scanning the key package table.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { DeliveryServiceClient, DeliveryServiceError } from "../../src/ds/client.js";
import { openStore } from "../../src/ds/open.js";
import { SqliteDsStore } from "../../src/ds/sqliteStore.js";
import { Device, PG_URL, SUITE1, dropSchema, spawnCli, startServer, uniqueSchema } from "./helpers.js";

/** A target with `n` regular packages and a last-resort one, registered on `url`. */
async function target(url: string, n: number, secret?: string | null) {
  const d = await Device.create();
  const ds = await d.register(url, secret);
  await ds.upload([...(await d.generate(n)), ...(await d.generate(1, { lastResort: true }))]);
  return { d, ds };
}

async function claimRaw(url: string, token: string, userId: string, key?: string) {
  const res = await fetch(`${url}/v1/users/${userId}/key-packages/claim?ciphersuite=${SUITE1}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, ...(key !== undefined ? { "idempotency-key": key } : {}) },
  });
  return {
    status: res.status,
    replayed: res.headers.get("idempotent-replayed"),
    retryAfter: res.headers.get("retry-after"),
    json: (await res.json()) as {
      keyPackages?: { clientId: string; ref: string; lastResort: boolean }[];
      error?: string;
      message?: string;
    },
  };
}

describe("claim limit per claimer and target user", () => {
  it("a client draining a user's pool is refused (429) while other claimers still get regular packages", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s, { limits: { claimsPerTargetUser: 3, claimTargetWindowMs: 3_600_000 } });
    try {
      const t = await target(srv.url, 10);
      const drainer = await (await Device.create()).register(srv.url);
      const other = await (await Device.create()).register(srv.url);
      for (let i = 0; i < 3; i++) {
        const r = await drainer.claim(t.d.userId, SUITE1);
        expect(r.keyPackages.map((k) => k.lastResort)).toEqual([false]);
      }
      const refused = await claimRaw(srv.url, drainer.token as string, t.d.userId);
      expect(refused.status).toBe(429);
      expect(refused.json.error).toBe("rate_limited");
      expect(Number(refused.retryAfter)).toBeGreaterThan(3500);
      const e = await drainer.claim(t.d.userId, SUITE1).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(DeliveryServiceError);
      expect((e as DeliveryServiceError).status).toBe(429);
      // the others are not limited, and the pool was not drained to the last resort
      for (let i = 0; i < 3; i++) {
        const r = await other.claim(t.d.userId, SUITE1);
        expect(r.keyPackages.map((k) => k.lastResort)).toEqual([false]);
      }
      expect(await t.ds.count(SUITE1)).toEqual({ count: 4, lastResort: 1 });
    } finally {
      await srv.close();
    }
  });
});

describe("Idempotency-Key on claims", () => {
  it("a retry with the key answers the same packages; another user's claim with it is 422; a bad key is 400", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s);
    try {
      const t = await target(srv.url, 5);
      const claimer = await (await Device.create()).register(srv.url);
      const token = claimer.token as string;
      const first = await claimRaw(srv.url, token, t.d.userId, "retry-1");
      expect(first.status).toBe(200);
      expect(first.replayed).toBeNull();
      const again = await claimRaw(srv.url, token, t.d.userId, "retry-1");
      expect(again.status).toBe(200);
      expect(again.replayed).toBe("true");
      expect(again.json).toEqual(first.json);
      // quoted (sf-string) form of the same key
      expect((await claimRaw(srv.url, token, t.d.userId, '"retry-1"')).json).toEqual(first.json);
      expect(await t.ds.count(SUITE1)).toEqual({ count: 4, lastResort: 1 });
      const other = await target(srv.url, 1);
      const mismatch = await claimRaw(srv.url, token, other.d.userId, "retry-1");
      expect([mismatch.status, mismatch.json.error]).toEqual([422, "idempotency_key_reused"]);
      for (const bad of ["", "a b", "x".repeat(256), "é"]) {
        const r = await claimRaw(srv.url, token, t.d.userId, bad);
        expect([bad, r.status, r.json.error]).toEqual([bad, 400, "bad_request"]);
      }
      expect(await t.ds.count(SUITE1)).toEqual({ count: 4, lastResort: 1 });
      expect(await other.ds.count(SUITE1)).toEqual({ count: 1, lastResort: 1 });
    } finally {
      await srv.close();
    }
  });

  it("DeliveryServiceClient retries a claim whose answer was lost, under the same key", async () => {
    const s = new SqliteDsStore(":memory:");
    await s.init();
    const srv = await startServer(s);
    try {
      const t = await target(srv.url, 5);
      const registered = await (await Device.create()).register(srv.url);
      const keys: string[] = [];
      let drop = 2; // the server answers, the client never sees the first two answers
      const lossy: typeof fetch = async (input, init) => {
        const res = await fetch(input, init);
        if (String(input).includes("/claim")) {
          keys.push(new Headers(init?.headers).get("idempotency-key") ?? "");
          if (drop-- > 0) {
            await res.arrayBuffer();
            throw new TypeError("connection reset");
          }
        }
        return res;
      };
      const ds = new DeliveryServiceClient({
        baseUrl: srv.url,
        clientId: registered.clientId as string,
        token: registered.token as string,
        fetch: lossy,
      });
      const r = await ds.claim(t.d.userId, SUITE1);
      expect(r.keyPackages.map((k) => k.lastResort)).toEqual([false]);
      expect(keys).toHaveLength(3);
      expect(new Set(keys).size).toBe(1);
      expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
      // three requests reached the server, one package was taken
      expect(await t.ds.count(SUITE1)).toEqual({ count: 4, lastResort: 1 });
      // out of retries: the error surfaces
      drop = 10;
      const none = new DeliveryServiceClient({
        baseUrl: srv.url,
        clientId: registered.clientId as string,
        token: registered.token as string,
        fetch: lossy,
        claimRetries: 1,
      });
      const e = await none.claim(t.d.userId, SUITE1, { idempotencyKey: "k" }).catch((err: unknown) => err);
      expect((e as DeliveryServiceError).error).toBe("network");
      expect(await t.ds.count(SUITE1)).toEqual({ count: 3, lastResort: 1 });
      // …and a later retry with that key gets what the lost attempts took
      drop = 0;
      const late = await none.claim(t.d.userId, SUITE1, { idempotencyKey: "k" });
      expect(late.keyPackages).toHaveLength(1);
      expect(await t.ds.count(SUITE1)).toEqual({ count: 3, lastResort: 1 });
    } finally {
      await srv.close();
    }
  });
});

describe("Idempotency-Key and the claim limit across DS processes", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  async function acrossProcesses(db: string[]): Promise<void> {
    const flags = [...db, "--dev", "--claims-per-target-user", "3"];
    const [a, b] = await Promise.all([spawnCli(flags), spawnCli(flags)]);
    cleanups.push(a!.stop, b!.stop);
    const t = await target(a!.url, 6, null);
    const claimer = await (await Device.create()).register(a!.url, null);
    const token = claimer.token as string;
    const first = await claimRaw(a!.url, token, t.d.userId, "across");
    expect(first.status).toBe(200);
    // the retry reaches the other process (as after a restart or behind a load balancer)
    const again = await claimRaw(b!.url, token, t.d.userId, "across");
    expect([again.status, again.replayed]).toEqual([200, "true"]);
    expect(again.json).toEqual(first.json);
    expect(await t.ds.count(SUITE1)).toEqual({ count: 5, lastResort: 1 });
    // the limit is counted in the database: 2 more claims on b, the 4th refused on a
    expect((await claimRaw(b!.url, token, t.d.userId)).status).toBe(200);
    expect((await claimRaw(b!.url, token, t.d.userId)).status).toBe(200);
    expect((await claimRaw(a!.url, token, t.d.userId)).status).toBe(429);
    // a replay is not a new claim: still answered
    expect((await claimRaw(a!.url, token, t.d.userId, "across")).status).toBe(200);
    expect(await t.ds.count(SUITE1)).toEqual({ count: 3, lastResort: 1 });
  }

  it("2 processes sharing PostgreSQL", async () => {
    const schema = uniqueSchema("idem");
    cleanups.push(() => dropSchema(schema));
    await acrossProcesses(["--db", PG_URL, "--pg-schema", schema]);
  });

  it("2 processes sharing a SQLite file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    await acrossProcesses(["--db", join(dir, "ds.db")]);
  });
});

describe("/metrics pool gauges", () => {
  it("come from counters: a scrape answers while ds_keypackages is locked exclusively (PostgreSQL)", async () => {
    const schema = uniqueSchema("metrics");
    const store = await openStore(PG_URL, { pgSchema: schema, pgPartitions: 2 });
    const srv = await startServer(store);
    const locker = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
    await locker.connect();
    try {
      const t = await target(srv.url, 7);
      const claimer = await (await Device.create()).register(srv.url);
      await claimer.claim(t.d.userId, SUITE1);
      const gauge = async () => {
        const text = await (await fetch(`${srv.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
        return /mlskp_ds_keypackages\{ciphersuite="1",kind="regular"\} (\d+)/.exec(text)?.[1];
      };
      expect(await gauge()).toBe("6");
      // no reader of the key package table can get past this lock
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE ds_keypackages IN ACCESS EXCLUSIVE MODE");
      await new Promise((r) => setTimeout(r, 1100)); // past the gauge's 1 s reuse
      expect(await gauge()).toBe("6");
      await locker.query("ROLLBACK");
      await claimer.claim(t.d.userId, SUITE1);
      await new Promise((r) => setTimeout(r, 1100));
      expect(await gauge()).toBe("5");
    } finally {
      await locker.end();
      await srv.close();
      await dropSchema(schema);
    }
  });
});
