/**
 * Delivery Service at scale (issue #12): what grows with the number of stored key packages.
 *
 * A PostgreSQL schema of its own (default `mlskp_scale`, dropped at the end unless `--keep`) is
 * created by the real `PostgresDsStore.init()`, then filled with synthetic rows in that schema by
 * SQL (`generate_series`, through the real constraints and count triggers): users with 1–10
 * clients, 100 regular + 1 last-resort package per client, each package a copy of a real
 * suite-1 key package (same size), one seen init key per package, expiries spread over 60 days.
 * At each size (default 10k → 100k → 1M → 5M packages) a real DS (`mlskp serve`, a child
 * process) is measured over HTTP on loopback: claims (8 claimers), count, upload of real
 * packages, `/metrics`, one batched purge of a day's slice (with claims running meanwhile),
 * claim planning before/after the purge (EXPLAIN (ANALYZE)), and table + index sizes.
 *
 * Run: `npx tsx bench/ds-scale.ts [--sizes 10000,100000] [--pg-partitions 8] [--partitioned-sizes
 * 1000000] [--keep] [--schema name] [--deadline-minutes 100]` or `npm run bench -- ds-scale`.
 * The 5M run takes ~40 min on 2 shared cores and ~12 GB of disk: it is not in the default bench list.
 * Writes bench/ds-scale-results.md.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  DeliveryServiceClient,
} from "../src/index.js";
import { CLAIM_SQL, PostgresDsStore } from "../src/ds/postgresStore.js";
import { DAY, PER_CLIENT, fillUsers, uidOf, type FillState } from "./ds-scale-fill.js";
import { machine } from "./util.js";

const PG_URL = process.env.MLSKP_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLAIMERS = 8;
const CLAIM_SECONDS = 20;
const USERS_PER_CHUNK = 500; // ~280k packages per fill statement

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const sizesOf = (s: string): number[] => s.split(",").map((x) => Number(x.trim()));
const SIZES = sizesOf(arg("sizes") ?? "10000,100000,1000000,5000000");
const PARTITIONS = Number(arg("pg-partitions") ?? 8);
const PARTITIONED_SIZES = sizesOf(arg("partitioned-sizes") ?? "1000000");
const KEEP = process.argv.includes("--keep");
const SCHEMA = arg("schema") ?? "mlskp_scale";
const DEADLINE = Date.now() + Number(arg("deadline-minutes") ?? 100) * 60_000;

const log = (s: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const load = (): number => loadavg()[0] ?? NaN;
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const median = (xs: number[]): number => pct(xs, 50);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const uuid = (): string => {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

// ── real key packages (uploads) ────────────────────────────────────────────

interface Uploader {
  clientId: ClientId;
  publicKey: Uint8Array;
  batch: Uint8Array[];
}
async function makeUploader(): Promise<Uploader> {
  const clientId = ClientId.parse(`${uuid()}:1@bench.example`);
  const cc = await CoreCrypto.open(await Database.inMemory());
  const cred = Credential.basic(SUITE, clientId);
  const ref = await cc.transaction((tx) => tx.addCredential(cred));
  const batch = await cc.transaction(async (tx) => {
    const out: Uint8Array[] = [];
    for (let i = 0; i < PER_CLIENT; i++) out.push((await tx.generateKeypackage(ref)).serialize());
    return out;
  });
  return { clientId, publicKey: cred.publicKey, batch };
}

// ── the DS process ─────────────────────────────────────────────────────────

async function startServer(schema: string): Promise<ChildProcess & { url: string }> {
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, "bin/mlskp.js"),
      "serve",
      "--dev",
      "--db",
      PG_URL,
      "--pg-schema",
      schema,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--log-level",
      "warn",
      "--claims-per-minute",
      "10000000",
      "--claims-per-target-user",
      "10000000",
      "--uploads-per-minute",
      "100000",
      "--registrations-per-minute",
      "100000",
    ],
    { cwd: ROOT, env: { ...process.env, MLSKP_USE_SOURCE: "1" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("server did not start")), 60_000);
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  return Object.assign(proc, { url });
}

async function stopServer(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
  p.kill("SIGTERM");
  await exited;
}

// ── synthetic fill ─────────────────────────────────────────────────────────

async function count(db: pg.Client): Promise<number> {
  const r = await db.query<{ n: string }>("SELECT n FROM ds_pool_counts");
  return r.rows.reduce((s, row) => s + Number(row.n), 0);
}

async function fillTo(db: pg.Client, target: number, st: FillState, kp: Buffer): Promise<void> {
  let have = await count(db);
  const t0 = performance.now();
  while (have < target) {
    // users needed for the rest, at (PER_CLIENT + 1) × 5.5 packages per user
    const need = Math.ceil((target - have) / ((PER_CLIENT + 1) * 5.5));
    const to = st.users + Math.min(USERS_PER_CHUNK, Math.max(1, need));
    const c0 = performance.now();
    await fillUsers(db, st.users, to, st, kp);
    st.users = to;
    // the counters are folded by the next scrape: read the deltas too
    const d = await db.query<{ n: string }>("SELECT coalesce(sum(delta), 0) AS n FROM ds_pool_deltas");
    have = (await count(db)) + Number(d.rows[0]?.n ?? 0);
    log(
      `  filled ${have.toLocaleString("en-US")} packages, ${st.users} users (chunk ${((performance.now() - c0) / 1000).toFixed(1)} s, load ${load().toFixed(2)})`,
    );
    if (Date.now() > DEADLINE) {
      log(`  deadline reached while filling: measuring at ${have} packages`);
      break;
    }
  }
  log(`  fill done in ${((performance.now() - t0) / 1000).toFixed(0)} s; VACUUM (ANALYZE)`);
  const v0 = performance.now();
  await db.query("VACUUM (ANALYZE) ds_clients, ds_keypackages, ds_seen_init_keys");
  log(`  vacuum ${((performance.now() - v0) / 1000).toFixed(0)} s`);
}

// ── measurements ───────────────────────────────────────────────────────────

interface Explain {
  planningMs: number;
  executionMs: number;
  buffers: number;
}

/** EXPLAIN (ANALYZE, BUFFERS) of the store's claim statement for user `u`, rolled back. */
async function explainClaim(db: pg.Client, u: number, now: number): Promise<Explain> {
  const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  const sql = CLAIM_SQL.replace(/\$1\b/g, lit(uidOf(u)))
    .replace(/\$2\b/g, lit("00000000-0000-4000-8000-000000000000:1@none.example"))
    .replace(/\$3\b/g, String(SUITE))
    .replace(/\$4\b/g, String(now));
  await db.query("BEGIN");
  try {
    const r = await db.query<{ "QUERY PLAN": [Record<string, unknown>] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`,
    );
    const plan = r.rows[0]?.["QUERY PLAN"][0] as {
      "Planning Time": number;
      "Execution Time": number;
      Plan: Record<string, number>;
      Planning?: Record<string, number>;
    };
    const b = (o: Record<string, number> | undefined): number =>
      (o?.["Shared Hit Blocks"] ?? 0) + (o?.["Shared Read Blocks"] ?? 0);
    return {
      planningMs: plan["Planning Time"],
      executionMs: plan["Execution Time"],
      buffers: b(plan.Plan) + b(plan.Planning),
    };
  } finally {
    await db.query("ROLLBACK");
  }
}

async function explainMedian(db: pg.Client, users: number, now: number): Promise<Explain> {
  const xs: Explain[] = [];
  // the same 7 users before and after the purge (their client counts vary from 1 to 10)
  for (let i = 0; i < 7; i++) xs.push(await explainClaim(db, 1 + Math.floor((i * users) / 7), now));
  return {
    planningMs: median(xs.map((x) => x.planningMs)),
    executionMs: median(xs.map((x) => x.executionMs)),
    buffers: median(xs.map((x) => x.buffers)),
  };
}

interface ClaimRun {
  claims: number;
  perSec: number;
  p50: number;
  p99: number;
  exhausted: number;
  handed: number;
}

/** Claimers claim random synthetic users until `stop()` or `max` claims or `seconds`. */
async function claimLoad(
  claimers: DeliveryServiceClient[],
  users: number,
  max: number,
  seconds: number,
  stop: () => boolean = () => false,
): Promise<ClaimRun> {
  const lat: number[] = [];
  let exhausted = 0;
  let handed = 0;
  let n = 0;
  const deadline = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    claimers.map(async (ds) => {
      while (n < max && performance.now() < deadline && !stop()) {
        n++;
        const s = performance.now();
        const r = await ds.claim(uidOf(1 + Math.floor(Math.random() * users)), SUITE);
        lat.push(performance.now() - s);
        exhausted += r.exhausted.length;
        handed += r.keyPackages.length;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return {
    claims: lat.length,
    perSec: lat.length / secs,
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    exhausted,
    handed,
  };
}

/** ds_keypackages and its partitions (`pg_partition_tree` has no rows for a plain table). */
const KP_RELS = `(SELECT relid FROM pg_partition_tree('ds_keypackages'::regclass)
  UNION SELECT 'ds_keypackages'::regclass AS relid) rels`;

interface Sizes {
  kpTotal: number;
  kpTable: number;
  kpIndexes: number;
  seenTotal: number;
  seenRows: number;
  indexes: { name: string; bytes: number }[];
}

async function sizes(db: pg.Client): Promise<Sizes> {
  const r = await db.query<{ total: string; tbl: string; idx: string }>(
    `SELECT sum(pg_total_relation_size(relid)) AS total, sum(pg_table_size(relid)) AS tbl,
            sum(pg_indexes_size(relid)) AS idx FROM ${KP_RELS}`,
  );
  const s = await db.query<{ total: string; n: string }>(
    "SELECT pg_total_relation_size('ds_seen_init_keys'::regclass) AS total, (SELECT count(*) FROM ds_seen_init_keys) AS n",
  );
  const ix = await db.query<{ name: string; bytes: string }>(
    `SELECT regexp_replace(c.relname, '_p[0-9]+', '') AS name, sum(pg_relation_size(i.indexrelid)) AS bytes
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid IN (SELECT relid FROM ${KP_RELS})
     GROUP BY 1 HAVING sum(pg_relation_size(i.indexrelid)) > 0 ORDER BY 2 DESC`,
  );
  return {
    kpTotal: Number(r.rows[0]?.total),
    kpTable: Number(r.rows[0]?.tbl),
    kpIndexes: Number(r.rows[0]?.idx),
    seenTotal: Number(s.rows[0]?.total),
    seenRows: Number(s.rows[0]?.n),
    indexes: ix.rows.map((x) => ({ name: x.name, bytes: Number(x.bytes) })),
  };
}

interface Stage {
  variant: string;
  target: number;
  stored: number;
  users: number;
  loadClaims: number;
  claims: ClaimRun;
  countP50: number;
  loadUpload: number;
  uploadP50: number;
  uploadKpPerSec: number;
  loadScrape: number;
  scrapeP50: number;
  scrapeMax: number;
  gaugeOk: boolean;
  fullScanMs: number;
  purgeRows: number;
  purgeSeen: number;
  purgeTotalMs: number;
  purgeBatches: number;
  batchP50: number;
  batchMax: number;
  duringPurge: ClaimRun;
  loadPurge: number;
  before: Explain;
  after: Explain;
  deadTuples: number;
  size: Sizes;
}

/** Times every purge DELETE the store's pool runs (the store's own SQL, timed from outside). */
const purgeBatchTimes: number[] = [];
{
  const proto = pg.Pool.prototype as unknown as { query: (...a: unknown[]) => Promise<unknown> };
  const orig = proto.query;
  proto.query = function (this: unknown, ...a: unknown[]): Promise<unknown> {
    const p = orig.apply(this, a);
    const sql = a[0];
    if (typeof sql === "string" && /^\s*DELETE FROM ds_(keypackages|seen_init_keys) WHERE \(?\w/.test(sql)) {
      const t0 = performance.now();
      void p.then(
        () => purgeBatchTimes.push(performance.now() - t0),
        () => undefined,
      );
    }
    return p;
  };
}

async function measure(
  variant: string,
  target: number,
  db: pg.Client,
  store: PostgresDsStore,
  url: string,
  st: FillState,
  claimers: DeliveryServiceClient[],
): Promise<Stage> {
  const nowS = (): number => Math.floor(Date.now() / 1000);
  // purge of the first day's slice, with 2 claimers running meanwhile
  const cut = st.tmin + DAY;
  const before = await explainMedian(db, st.users, nowS());
  const loadPurge = load();
  await store.ping(); // a warm connection: batch times without the connection set-up
  purgeBatchTimes.length = 0;
  let purging = true;
  const during = claimLoad(claimers.slice(0, 2), st.users, 100_000, 600, () => !purging);
  const p0 = performance.now();
  const purged = await store.purgeExpired(cut);
  const purgeTotalMs = performance.now() - p0;
  purging = false;
  const duringPurge = await during;
  st.tmin = cut;
  const after = await explainMedian(db, st.users, nowS());
  const dead = await db.query<{ n: string }>(
    `SELECT sum(n_dead_tup) AS n FROM pg_stat_user_tables WHERE relid IN (SELECT relid FROM ${KP_RELS})`,
  );
  log(
    `  purge: ${purged.keypackages} packages + ${purged.initKeys} init keys in ${(purgeTotalMs / 1000).toFixed(1)} s, ${purgeBatchTimes.length} batches p50 ${median(purgeBatchTimes).toFixed(1)} ms max ${Math.max(...purgeBatchTimes).toFixed(1)} ms; claims meanwhile p50 ${duringPurge.p50.toFixed(1)} p99 ${duringPurge.p99.toFixed(1)} ms`,
  );
  log(
    `  claim planning ${before.planningMs.toFixed(2)} → ${after.planningMs.toFixed(2)} ms, execution ${before.executionMs.toFixed(2)} → ${after.executionMs.toFixed(2)} ms, buffers ${before.buffers} → ${after.buffers}; dead tuples ${dead.rows[0]?.n}`,
  );

  // claims: bounded so no user runs dry (each takes one package of each of its clients)
  const maxClaims = Math.min(4000, st.users * 40);
  await claimLoad(claimers, st.users, 80, 10); // warm-up
  const loadClaims = load();
  const claims = await claimLoad(claimers, st.users, maxClaims, CLAIM_SECONDS);
  log(
    `  claims: ${claims.claims} in ≤${CLAIM_SECONDS} s, ${claims.perSec.toFixed(0)}/s, p50 ${claims.p50.toFixed(1)} ms, p99 ${claims.p99.toFixed(1)} ms, exhausted ${claims.exhausted} (load ${loadClaims.toFixed(2)})`,
  );

  // uploads: 3 fresh clients × 100 real packages, then counts by the last one
  const loadUpload = load();
  const up: number[] = [];
  let last: DeliveryServiceClient | undefined;
  for (let i = 0; i < 3; i++) {
    const u = await makeUploader();
    const ds = new DeliveryServiceClient({ baseUrl: url });
    await ds.register({ clientId: u.clientId, signatureKeys: new Map([[SUITE, u.publicKey]]) });
    const t0 = performance.now();
    await ds.upload(u.batch);
    up.push(performance.now() - t0);
    last = ds;
  }
  const counts: number[] = [];
  for (let i = 0; i < 20 && last !== undefined; i++) {
    const t0 = performance.now();
    await last.count(SUITE);
    counts.push(performance.now() - t0);
  }
  log(`  upload batch p50 ${median(up).toFixed(0)} ms, count p50 ${median(counts).toFixed(1)} ms`);

  // /metrics: 5 scrapes 1.1 s apart (the DS reuses an answer for 1 s); gauge vs count(*)
  const loadScrape = load();
  const scrapes: number[] = [];
  let body = "";
  for (let i = 0; i < 5; i++) {
    await sleep(1100);
    const t0 = performance.now();
    body = await (await fetch(`${url}/metrics`)).text();
    scrapes.push(performance.now() - t0);
  }
  const gauge = [...body.matchAll(/^mlskp_ds_keypackages\{[^}]*\} (\d+)/gm)].reduce(
    (s, m) => s + Number(m[1]),
    0,
  );
  const f0 = performance.now();
  const exact = await db.query<{ n: string }>(
    "SELECT ciphersuite, last_resort, count(*) AS n FROM ds_keypackages GROUP BY 1, 2",
  );
  const fullScanMs = performance.now() - f0;
  const stored = exact.rows.reduce((s, r) => s + Number(r.n), 0);
  log(
    `  /metrics p50 ${median(scrapes).toFixed(1)} ms (max ${Math.max(...scrapes).toFixed(1)}), gauge ${gauge} vs count(*) ${stored} (full scan ${fullScanMs.toFixed(0)} ms)`,
  );

  const size = await sizes(db);
  log(
    `  ds_keypackages ${(size.kpTotal / 2 ** 20).toFixed(0)} MB (table ${(size.kpTable / 2 ** 20).toFixed(0)}, indexes ${(size.kpIndexes / 2 ** 20).toFixed(0)}), ds_seen_init_keys ${(size.seenTotal / 2 ** 20).toFixed(0)} MB for ${size.seenRows} rows`,
  );
  return {
    variant,
    target,
    stored,
    users: st.users,
    loadClaims,
    claims,
    countP50: median(counts),
    loadUpload,
    uploadP50: median(up),
    uploadKpPerSec: (PER_CLIENT * 1000) / median(up),
    loadScrape,
    scrapeP50: median(scrapes),
    scrapeMax: Math.max(...scrapes),
    gaugeOk: gauge === stored,
    fullScanMs,
    purgeRows: purged.keypackages,
    purgeSeen: purged.initKeys,
    purgeTotalMs,
    purgeBatches: purgeBatchTimes.length,
    batchP50: median(purgeBatchTimes),
    batchMax: Math.max(...purgeBatchTimes),
    duringPurge,
    loadPurge,
    before,
    after,
    deadTuples: Number(dead.rows[0]?.n ?? 0),
    size,
  };
}

async function runVariant(
  variant: string,
  schema: string,
  partitions: number,
  targets: number[],
  kp: Buffer,
  out: Stage[],
): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
  const store = new PostgresDsStore(PG_URL, { schema, partitions, poolSize: 2 });
  await store.init();
  const db = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await db.connect();
  const server = await startServer(schema);
  try {
    const claimers = await Promise.all(
      Array.from({ length: CLAIMERS }, async () => {
        const ds = new DeliveryServiceClient({ baseUrl: server.url });
        const id = ClientId.parse(`${uuid()}:1@bench.example`);
        await ds.register({
          clientId: id,
          signatureKeys: new Map([[SUITE, Credential.basic(SUITE, id).publicKey]]),
        });
        return ds;
      }),
    );
    const st: FillState = { users: 0, tmin: Math.floor(Date.now() / 1000) + 30 * DAY };
    for (const target of targets) {
      if (Date.now() > DEADLINE) {
        log(`deadline reached: ${variant} ${target} skipped`);
        break;
      }
      log(`${variant}: filling to ${target.toLocaleString("en-US")} packages`);
      await fillTo(db, target, st, kp);
      out.push(await measure(variant, target, db, store, server.url, st, claimers));
      writeResults(out);
    }
  } finally {
    await stopServer(server);
    await store.close();
    if (!KEEP) await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  }
}

const MB = (b: number): string => (b / 2 ** 20).toFixed(0);
const short = (n: number): string =>
  n >= 1e6 ? `${+(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(0)}k` : String(n);
let pgVersion = "unknown";
const started = new Date().toISOString();

function writeResults(stages: Stage[]): void {
  const f = (x: number, d = 1): string => x.toFixed(d);
  const lines = [
    "## Delivery Service at scale (PostgreSQL)",
    "",
    `Measured ${started} on ${machine()}, PostgreSQL ${pgVersion} (stock configuration, shared_buffers 128 MB),`,
    "with `npx tsx bench/ds-scale.ts` (not in the default `npm run bench` list: the 5M run takes ~40 min).",
    "Synthetic fill by SQL in the store's own schema (created by `PostgresDsStore.init()`, through its",
    `constraints and count triggers): users with 1–10 clients, ${PER_CLIENT} regular + 1 last-resort package per client,`,
    "each a copy of a real suite-1 key package, one seen init key per package, expiries spread over 60 days;",
    "then VACUUM (ANALYZE). One DS process (`mlskp serve`) over loopback; the load generator, the DS and",
    "PostgreSQL share the 2 cores with other work (1-min load average in the `load` columns).",
    "Claims: 8 concurrent claimers through `DeliveryServiceClient` (with its `Idempotency-Key`), random",
    `target users, at most ${CLAIM_SECONDS} s. Upload: one batch of ${PER_CLIENT} real packages (full validation, signatures on the`,
    "worker), median of 3. `/metrics`: median of 5 scrapes 1.1 s apart; `full scan` is the count query the",
    "scrape ran before schema version 2. Purge: `purgeExpired` of one day's slice (batches of 1000, 100 ms",
    "pauses) while 2 claimers keep claiming. Planning/execution: EXPLAIN (ANALYZE, BUFFERS) of the claim",
    "statement, median of 7 users, before the purge and right after it (no VACUUM in between).",
    "",
    "| variant | stored | load | claims/s | claim p50 / p99 ms | count p50 ms | upload 100 p50 ms | `/metrics` p50 ms (full scan before v2) | purge: rows, total s, batch p50 ms | claim planning before → after purge ms | MB per M packages | MB per M seen init keys |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...stages.map(
      (s) =>
        `| ${s.variant} | ${short(s.stored)} | ${f(s.loadClaims, 1)} | ${f(s.claims.perSec, 0)} | ${f(s.claims.p50, 0)} / ${f(s.claims.p99, 0)} | ${f(s.countP50, 0)} | ${f(s.uploadP50, 0)} | ${f(s.scrapeP50, 0)} (${f(s.fullScanMs, 0)}) | ${s.purgeRows}, ${f(s.purgeTotalMs / 1000)}, ${f(s.batchP50, 0)} | ${f(s.before.planningMs, 2)} → ${f(s.after.planningMs, 2)} | ${MB(s.size.kpTotal / (s.stored / 1e6))} | ${MB(s.size.seenTotal / (s.size.seenRows / 1e6))} |`,
    ),
    "",
    "All figures:",
    "",
    "| variant | stored | claims/s | claim p50 / p99 ms | load | count p50 ms | upload 100 p50 ms | `/metrics` p50 / max ms | gauge = count(*) | full scan ms | purge rows (+ init keys) | purge total s | batches, p50 / max ms | claims during purge p50 / p99 ms | planning before → after ms | execution ms, buffers | dead rows after purge | ds_keypackages MB (table + indexes) | MB per M packages | seen init keys MB per M |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...stages.map((s) => {
      const perM = s.size.kpTotal / (s.stored / 1e6);
      const seenPerM = s.size.seenTotal / (s.size.seenRows / 1e6);
      return `| ${s.variant} | ${short(s.stored)} | ${f(s.claims.perSec, 0)} | ${f(s.claims.p50)} / ${f(s.claims.p99)} | ${f(s.loadClaims, 2)} | ${f(s.countP50)} | ${f(s.uploadP50, 0)} | ${f(s.scrapeP50)} / ${f(s.scrapeMax)} | ${s.gaugeOk ? "yes" : "**no**"} | ${f(s.fullScanMs, 0)} | ${s.purgeRows} (+${s.purgeSeen}) | ${f(s.purgeTotalMs / 1000)} | ${s.purgeBatches}, ${f(s.batchP50)} / ${f(s.batchMax)} | ${f(s.duringPurge.p50)} / ${f(s.duringPurge.p99)} | ${f(s.before.planningMs, 2)} → ${f(s.after.planningMs, 2)} | ${f(s.before.executionMs, 2)} → ${f(s.after.executionMs, 2)}, ${s.before.buffers} → ${s.after.buffers} | ${s.deadTuples} | ${MB(s.size.kpTotal)} (${MB(s.size.kpTable)} + ${MB(s.size.kpIndexes)}) | ${MB(perM)} | ${MB(seenPerM)} |`;
    }),
    "",
    "Index sizes at the largest size of each variant (MB):",
    "",
    ...[...new Set(stages.map((s) => s.variant))].map((v) => {
      const s = stages.filter((x) => x.variant === v).at(-1) as Stage;
      return `- ${v}, ${short(s.stored)}: ${s.size.indexes.map((i) => `${i.name} ${MB(i.bytes)}`).join(", ")}`;
    }),
    "",
    `Claims exhausted (no regular package left for a client) over all stages: ${stages.reduce((n, s) => n + s.claims.exhausted, 0)}.`,
    "",
    "Reading: nothing here grows with the table except what must (the purge total grows with the day's",
    "slice; storage with the rows). Times over HTTP follow the machine's load, not the size; the EXPLAIN",
    "figures are the statements' own cost. The curve and what it means: docs/scaling.md.",
    "",
  ];
  writeFileSync(new URL("./ds-scale-results.md", import.meta.url), lines.join("\n"));
}

async function main(): Promise<void> {
  pgVersion =
    spawnSync("psql", [PG_URL, "-tAc", "show server_version"], { encoding: "utf8" }).stdout.trim() ||
    "unknown";
  log(
    `sizes ${SIZES.join(", ")}; partitioned (${PARTITIONS}) ${PARTITIONED_SIZES.join(", ")}; load ${load().toFixed(2)}`,
  );
  const kp = Buffer.from((await makeUploader()).batch[0] as Uint8Array);
  log(`a real key package is ${kp.length} bytes`);
  const stages: Stage[] = [];
  await runVariant("plain", SCHEMA, 0, SIZES, kp, stages);
  if (PARTITIONS > 0 && PARTITIONED_SIZES.length > 0 && PARTITIONED_SIZES[0] !== 0)
    await runVariant(
      `${PARTITIONS} partitions`,
      `${SCHEMA}_p${PARTITIONS}`,
      PARTITIONS,
      PARTITIONED_SIZES,
      kp,
      stages,
    );
  writeResults(stages);
  log("written bench/ds-scale-results.md");
}

await main();
