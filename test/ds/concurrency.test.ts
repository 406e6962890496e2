/**
 * Concurrent claimers against real DS processes (the CLI, on 127.0.0.1 ephemeral ports):
 * 2 processes sharing PostgreSQL, and 1 on a SQLite file.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { DeliveryServiceClient } from "../../src/ds/client.js";
import { Device, PG_URL, SUITE1, dropSchema, randomUserId, spawnCli, uniqueSchema } from "./helpers.js";

const CLAIMERS = 60;
const CLAIMS_EACH = 2;
/** Regular packages per target client; the last one outlasts all claims. */
const REGULAR = [10, 30, 60, 150];

interface Claim {
  start: number;
  end: number;
  server: number;
  got: { clientId: string; ref: string; lastResort: boolean }[];
  exhausted: string[];
}

async function scenario(urls: string[]): Promise<void> {
  const userId = randomUserId();
  const targets = await Promise.all(REGULAR.map(() => Device.create({ userId })));
  const targetDs: DeliveryServiceClient[] = [];
  const uploaded = new Map<string, Set<string>>();
  for (const [i, d] of targets.entries()) {
    const ds = await d.register(urls[i % urls.length] as string, null);
    targetDs.push(ds);
    const regular = await d.generate(REGULAR[i] as number);
    const [lr] = await d.generate(1, { lastResort: true });
    await ds.upload([...regular, lr!]);
    uploaded.set(d.id, new Set(regular.map((k) => k.ref().hex())));
  }
  const claimers = await Promise.all(
    Array.from({ length: CLAIMERS }, async (_, i) =>
      (await Device.create()).register(urls[i % urls.length] as string, null),
    ),
  );
  // Each claimer talks to one server; claimers alternate between servers.
  const claims: Claim[] = [];
  await Promise.all(
    claimers.map(async (c, i) => {
      for (let n = 0; n < CLAIMS_EACH; n++) {
        const start = performance.now();
        const r = await c.claim(userId, SUITE1);
        claims.push({
          start,
          end: performance.now(),
          server: i % urls.length,
          got: r.keyPackages.map((k) => ({ clientId: k.clientId, ref: k.ref, lastResort: k.lastResort })),
          exhausted: r.exhausted,
        });
      }
    }),
  );
  const total = CLAIMERS * CLAIMS_EACH;
  expect(claims).toHaveLength(total);
  for (let s = 0; s < urls.length; s++)
    expect(claims.filter((c) => c.server === s).length).toBeGreaterThan(0);

  const regularRefs = claims.flatMap((c) => c.got.filter((g) => !g.lastResort).map((g) => g.ref));
  expect(new Set(regularRefs).size).toBe(regularRefs.length); // never handed out twice

  for (const [i, d] of targets.entries()) {
    const mine = claims.flatMap((c) => c.got.filter((g) => g.clientId === d.id));
    const regular = mine.filter((g) => !g.lastResort);
    for (const g of regular) expect(uploaded.get(d.id)?.has(g.ref)).toBe(true);
    const remaining = (await targetDs[i]!.count(SUITE1)).count;
    // none lost: uploaded = claimed + remaining
    expect(regular.length + remaining).toBe(REGULAR[i]);
    // every claim got a package of every target (last resort at worst)
    expect(mine).toHaveLength(total);
    const lastResort = mine.filter((g) => g.lastResort);
    expect(lastResort.length).toBe(Math.max(0, total - (REGULAR[i] as number)));
    // last resort only once the regular ones ran out: no claim that started after a
    // last-resort answer had ended got a regular package
    const firstLrEnd = Math.min(
      ...claims.filter((c) => c.got.some((g) => g.clientId === d.id && g.lastResort)).map((c) => c.end),
    );
    const lateRegular = claims.filter(
      (c) => c.start > firstLrEnd && c.got.some((g) => g.clientId === d.id && !g.lastResort),
    );
    expect(lateRegular).toEqual([]);
    if (lastResort.length > 0) expect(remaining).toBe(0);
  }
  expect(claims.flatMap((c) => c.exhausted)).toEqual([]);
}

const FAST = [
  "--dev",
  "--claims-per-minute",
  "100000",
  "--uploads-per-minute",
  "100000",
  "--registrations-per-minute",
  "100000",
];

describe("concurrent claimers", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it(`${CLAIMERS} claimers, 2 DS processes sharing PostgreSQL`, async () => {
    const schema = uniqueSchema("conc");
    cleanups.push(() => dropSchema(schema));
    const servers = await Promise.all(
      [0, 1].map(() => spawnCli(["--db", PG_URL, "--pg-schema", schema, ...FAST])),
    );
    for (const s of servers) cleanups.push(s.stop);
    await scenario(servers.map((s) => s.url));
    for (const s of servers) expect(s.proc.exitCode).toBeNull(); // both still serving
  });

  it(`${CLAIMERS} claimers, 1 DS process on SQLite`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-ds-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const server = await spawnCli(["--db", join(dir, "ds.db"), ...FAST]);
    cleanups.push(server.stop);
    await scenario([server.url]);
  });
});
