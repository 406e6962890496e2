/**
 * Issue #12, scale: on a synthetic fill (the one bench/ds-scale.ts uses up to 5M packages), the
 * claim statement reads ds_keypackages through its indexes only, the pool gauge (trigger
 * counters) equals count(*), and the purge removes exactly a day's slice in bounded batches.
 * Plain and hash-partitioned tables.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { CLAIM_SQL, PostgresDsStore } from "../../src/ds/postgresStore.js";
import { DAY, fillUsers, uidOf, type FillState } from "../../bench/ds-scale-fill.js";
import { PG_URL, dropSchema, uniqueSchema } from "./helpers.js";

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  Plans?: PlanNode[];
}
const seqScans = (n: PlanNode): string[] => [
  ...(n["Node Type"] === "Seq Scan" ? [n["Relation Name"] ?? "?"] : []),
  ...(n.Plans ?? []).flatMap(seqScans),
];

describe("PostgreSQL store on a synthetic fill", () => {
  for (const partitions of [0, 4]) {
    it(`claims use the indexes, the gauge is exact, the purge takes a day's slice (partitions: ${partitions})`, async () => {
      const schema = uniqueSchema("scale");
      const store = new PostgresDsStore(PG_URL, { schema, partitions, poolSize: 2 });
      const db = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
      try {
        await store.init();
        await db.connect();
        const now = Math.floor(Date.now() / 1000);
        const st: FillState = { users: 0, tmin: now + 30 * DAY };
        await fillUsers(db, 0, 40, st, Buffer.alloc(334, 1)); // 220 clients, 22 220 packages
        await db.query("ANALYZE ds_clients, ds_keypackages, ds_seen_init_keys");
        const exact = async (where = "true"): Promise<number> =>
          Number(
            (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ds_keypackages WHERE ${where}`)).rows[0]
              ?.n,
          );
        const gauge = async (): Promise<number> => (await store.poolSizes()).reduce((s, p) => s + p.count, 0);
        expect(await exact()).toBe(22_220);
        expect(await gauge()).toBe(22_220);

        for (const u of [1, 17, 40]) {
          const sql = CLAIM_SQL.replace(/\$1\b/g, `'${uidOf(u)}'`)
            .replace(/\$2\b/g, "'none'")
            .replace(/\$3\b/g, "1")
            .replace(/\$4\b/g, String(now));
          const r = await db.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${sql}`);
          const plan = r.rows[0]?.["QUERY PLAN"][0].Plan as PlanNode;
          expect(seqScans(plan).filter((rel) => rel.startsWith("ds_keypackages"))).toEqual([]);
        }

        const slice = await exact(`not_after <= ${st.tmin + DAY}`);
        const seenSlice = Number(
          (
            await db.query<{ n: string }>(
              `SELECT count(*) AS n FROM ds_seen_init_keys WHERE not_after <= ${st.tmin + DAY}`,
            )
          ).rows[0]?.n,
        );
        expect(slice).toBeGreaterThan(100); // ~1/60 of the packages
        const purged = await store.purgeExpired(st.tmin + DAY, { batchSize: 100, pauseMs: 0 });
        expect(purged.keypackages).toBe(slice);
        expect(purged.initKeys).toBe(seenSlice);
        expect(await exact()).toBe(22_220 - slice);
        expect(await gauge()).toBe(22_220 - slice);
      } finally {
        await db.end().catch(() => undefined);
        await store.close();
        await dropSchema(schema);
      }
    }, 120_000);
  }
});
