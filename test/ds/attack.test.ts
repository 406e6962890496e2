/**
 * Attack test (loopback only, bounded in time): while one registered client uploads
 * 1 000-package batches as fast as it can, with limits raised so that nothing but the server's
 * own design protects the others, `/healthz` and claims by other clients keep p99 under 100 ms.
 *
 * The DS runs in its own process (the CLI); the attacker runs in a worker thread of this process
 * so that building its batches never delays the measuring loop. Its batches are the costliest
 * kind for the server: packages that pass every cheap check (right identity, registered key,
 * fresh init key) and only fail at the signature, plus some valid ones that get stored.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { setPriority, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterAll, expect, it } from "vitest";
import { Device, PG_URL, b64, dropSchema, randomUserId, spawnCli, uniqueSchema } from "./helpers.js";

/** How long the attack runs while latencies are measured, ms. */
const DURATION_MS = 10_000;
/** Latencies measured before the attack starts (same processes, same machine), ms. */
const BASELINE_MS = 3_000;
/**
 * The bound on p99 latency: 100 ms, times a factor that is 1 on a quiet machine and 3 (300 ms)
 * in CI (`CI=true`) or when the baseline measured first, without any attack, already has a p99
 * over 50 ms (a quiet machine answers these requests in a few ms). `MLSKP_ATTACK_P99_FACTOR`
 * overrides both. Why: `npm test` runs the other test files in parallel on the same cores (two
 * on the CI machine), and their CPU use lands in these latencies through no fault of the server;
 * there `/healthz` p99 _without any attack_ was measured at 40–290 ms. To keep that noise out
 * where the OS allows it, the DS's event-loop thread and the measuring thread run at a raised
 * priority (nice −10, as one would run a DS next to batch jobs; needs root, as in CI), while the
 * attacker stays at nice 0 and the DS's verification threads at nice 10 (their own setting); and
 * the measuring loops run in a worker thread of their own, so a garbage collection of this
 * test's heap is not counted as server latency. The baseline is printed next to the figures under
 * attack, so a regression of the server shows as a gap between the two. See docs/ds.md.
 */
function p99Factor(baselineP99: number): { factor: number; why: string } {
  const forced = process.env.MLSKP_ATTACK_P99_FACTOR;
  if (forced !== undefined) return { factor: Number(forced), why: "MLSKP_ATTACK_P99_FACTOR" };
  if (process.env.CI === "true") return { factor: 3, why: "CI" };
  if (baselineP99 > 50) return { factor: 3, why: `busy machine: baseline p99 ${baselineP99.toFixed(0)} ms` };
  return { factor: 1, why: "quiet machine" };
}

/** Set a thread's nice value (Linux: pid 0 is the calling thread); false when not permitted. */
function renice(pid: number, nice: number): boolean {
  try {
    setPriority(pid, nice);
    return true;
  } catch {
    return false;
  }
}

const ATTACKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { randomFillSync } = require("node:crypto");
const { url, path, token, valid, template, initKeyOffset, stopAt, inFlight } = workerData;
try {
  require("node:os").setPriority(0, 0); // the attacker gets no raised priority (Linux: this thread)
} catch {}
const tpl = Buffer.from(template, "base64");
const stats = { sent: 0, byStatus: {}, rules: {}, maxMs: 0 };
function forged() {
  const out = [];
  for (let i = 0; i < 1000; i++) {
    const b = Buffer.from(tpl);
    randomFillSync(b, initKeyOffset, 32); // a fresh init key: only the signature is wrong
    out.push(b.toString("base64"));
  }
  return JSON.stringify({ keyPackages: out });
}
async function loop() {
  while (Date.now() < stopAt) {
    const body = valid.length > 0 ? JSON.stringify({ keyPackages: valid.shift() }) : forged();
    const t = Date.now();
    try {
      const res = await fetch(url + path, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer " + token },
        body,
      });
      const json = await res.json();
      stats.byStatus[res.status] = (stats.byStatus[res.status] || 0) + 1;
      for (const r of json.rejected || []) stats.rules[r.rule] = (stats.rules[r.rule] || 0) + 1;
      if (res.status === 503) await new Promise((r) => setTimeout(r, 50));
    } catch (e) {
      stats.byStatus.error = (stats.byStatus.error || 0) + 1;
    }
    stats.sent++;
    stats.maxMs = Math.max(stats.maxMs, Date.now() - t);
  }
}
Promise.all(Array.from({ length: inFlight }, loop)).then(() => parentPort.postMessage(stats));
`;

/** `/healthz` every 20 ms and each claimer every 40 ms, for `ms` per request: sorted latencies. */
const MEASURER = `
const { parentPort, workerData } = require("node:worker_threads");
const { url, userId, tokens } = workerData;
try {
  require("node:os").setPriority(0, -10); // Linux: this thread only; needs root
} catch {}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function measure(ms) {
  const health = [], claims = [], claimed = [], errors = [];
  const end = Date.now() + ms;
  await Promise.all([
    (async () => {
      while (Date.now() < end) {
        const t = performance.now();
        const res = await fetch(url + "/healthz");
        await res.text();
        health.push(performance.now() - t);
        if (res.status !== 200) errors.push("healthz " + res.status);
        await sleep(20);
      }
    })(),
    ...tokens.map(async (token) => {
      while (Date.now() < end) {
        const t = performance.now();
        const res = await fetch(url + "/v1/users/" + userId + "/key-packages/claim?ciphersuite=1", {
          method: "POST",
          headers: { authorization: "Bearer " + token },
        });
        const json = await res.json();
        claims.push(performance.now() - t);
        if (res.status !== 200 || json.keyPackages.length !== 2) errors.push("claim " + res.status);
        else for (const k of json.keyPackages) if (!k.lastResort) claimed.push(k.ref);
        await sleep(40);
      }
    }),
  ]);
  const up = (a, b) => a - b;
  return { health: health.sort(up), claims: claims.sort(up), claimed, errors };
}
parentPort.on("message", (m) => measure(m.ms).then((r) => parentPort.postMessage(r)));
`;

interface Measured {
  health: number[];
  claims: number[];
  claimed: string[];
  errors: string[];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

it("healthz and other clients' claims keep p99 < 100 ms while one client uploads 1 000-package batches flat out", async () => {
  const big = "100000000";
  // The store: SQLite in memory by default, so the figures measure the DS process (its event
  // loop and verification workers) and not the disk. With a SQLite file, every synchronous=FULL
  // commit fsyncs on the event loop, and on a machine whose disk is busy with other work that
  // alone passes 100 ms, attack or not; PostgreSQL's commits wait on its own disk likewise.
  // MLSKP_ATTACK_STORE=postgres or =file runs the same test on those.
  const kind = process.env.MLSKP_ATTACK_STORE ?? "memory";
  let store: string[] = ["--db", ":memory:"];
  if (kind === "postgres") {
    const schema = uniqueSchema("attack");
    cleanups.push(() => dropSchema(schema));
    store = ["--db", PG_URL, "--pg-schema", schema];
  } else if (kind === "file") {
    const dir = mkdtempSync(join(tmpdir(), "mlskp-attack-"));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    store = ["--db", join(dir, "ds.db")];
  }
  const server = await spawnCli([
    ...store,
    "--dev",
    "--uploads-per-minute",
    big,
    "--upload-packages-per-minute",
    big,
    "--upload-bytes-per-minute",
    "1000000000000",
    "--claims-per-minute",
    big,
    "--claims-per-target-user",
    big,
    "--registrations-per-minute",
    big,
  ]);
  cleanups.push(server.stop);
  const url = server.url;
  // The DS's main thread (Linux: the thread whose id is the pid) and this measuring thread.
  const boosted = renice(server.proc.pid as number, -10);

  // Targets: one user with two devices and a pool each; three claimers.
  const userId = randomUserId();
  const targets = [await Device.create({ userId }), await Device.create({ userId })];
  for (const d of targets) {
    const ds = await d.register(url, null);
    await ds.upload([...(await d.generate(999)), ...(await d.generate(1, { lastResort: true }))]);
  }
  const claimers = await Promise.all([1, 2, 3].map(async () => (await Device.create()).register(url, null)));

  // The attacker: 2 valid batches of 1 000, then forged ones.
  const attacker = await Device.create();
  const attackerDs = await attacker.register(url, null);
  const valid = [
    (await attacker.generate(1000)).map((k) => b64(k.serialize())),
    (await attacker.generate(1000)).map((k) => b64(k.serialize())),
  ];
  const template = (await attacker.generate(1))[0]!;
  const tplBytes = template.serialize();
  const initKeyOffset = 5; // version (2) · cipher_suite (2) · init_key length (1)
  expect(Buffer.from(tplBytes.subarray(initKeyOffset, initKeyOffset + 32))).toEqual(
    Buffer.from(template.initKey()),
  );

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // The measuring loops run in a worker thread of their own: a garbage collection of this
  // test's big heap (thousands of generated packages) must not show up as server latency.
  const measurer = new Worker(MEASURER, {
    eval: true,
    workerData: { url, userId, tokens: claimers.map((c) => c.token as string) },
  });
  cleanups.push(async () => void (await measurer.terminate()));
  const measure = (ms: number): Promise<Measured> =>
    new Promise((resolve, reject) => {
      measurer.once("message", resolve);
      measurer.once("error", reject);
      measurer.postMessage({ ms });
    });
  const baseline = await measure(BASELINE_MS);

  const stopAt = Date.now() + DURATION_MS + 2_000;
  const worker = new Worker(ATTACKER, {
    eval: true,
    workerData: {
      url,
      path: `/v1/clients/${encodeURIComponent(attacker.id)}/key-packages`,
      token: attackerDs.token,
      valid,
      template: b64(tplBytes),
      initKeyOffset,
      stopAt,
      inFlight: 2,
    },
  });
  cleanups.push(async () => void (await worker.terminate()));
  const attackStats = new Promise<{
    sent: number;
    byStatus: Record<string, number>;
    rules: Record<string, number>;
    maxMs: number;
  }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });

  // Let the attack get going (first batches under verification), then measure.
  await sleep(1_500);
  const { health, claims, claimed, errors } = await measure(DURATION_MS);
  const stats = await attackStats;

  const { factor, why } = p99Factor(
    Math.max(percentile(baseline.health, 99), percentile(baseline.claims, 99)),
  );
  const bound = 100 * factor;
  const fmt = (xs: number[]) =>
    `n=${xs.length} p50=${percentile(xs, 50).toFixed(1)} p99=${percentile(xs, 99).toFixed(1)} max=${(xs.at(-1) ?? 0).toFixed(1)} ms`;
  console.log(
    `attack test: attacker sent ${stats.sent} batches of 1 000 (${JSON.stringify(stats.byStatus)}, rules ${JSON.stringify(stats.rules)}, slowest answer ${stats.maxMs} ms); store ${kind}; priority ${boosted ? "raised" : "not raised"}; under attack: /healthz ${fmt(health)}, claims ${fmt(claims)}; baseline without attack: /healthz ${fmt(baseline.health)}, claims ${fmt(baseline.claims)}; bound ${bound} ms (${why})`,
  );

  // The attack was real: batches were verified (rejected at the signature) and stored.
  expect(stats.byStatus["201"]).toBe(2);
  expect(stats.rules.keypackage_signature ?? 0).toBeGreaterThanOrEqual(1_000);
  expect(health.length).toBeGreaterThan(100);
  expect(claims.length).toBeGreaterThan(100);
  expect([...baseline.errors, ...errors]).toEqual([]);
  const refs = [...baseline.claimed, ...claimed];
  expect(new Set(refs).size).toBe(refs.length); // never handed out twice, under load too
  expect(percentile(health, 99), "/healthz p99 under attack").toBeLessThan(bound);
  expect(percentile(claims, 99), "claims p99 under attack").toBeLessThan(bound);
}, 120_000);
