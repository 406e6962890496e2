/**
 * Delivery Service load bench, loopback only, bounded in count and time:
 *  - uploads: batches of 100 key packages (full RFC 9420 §10.1 validation), 4 in flight;
 *  - claims: a fixed number of concurrent claimers, each claim takes one package of each of
 *    a target user's 2 clients; users are claimed round-robin so none runs dry.
 * Configurations: 1, 2, 4 DS processes (the CLI, `mlskp serve`) sharing PostgreSQL, and 1 on SQLite.
 * Each configuration runs BENCH_ROUNDS times (default 3) on a fresh database; the median round is reported.
 * Run: `npx tsx bench/ds.ts` (BENCH_CLAIMS, BENCH_CONCURRENCY, BENCH_SECONDS, BENCH_ROUNDS, BENCH_PG_PROCESSES,
 * MLSKP_BENCH_PG_URL).
 * Writes bench/ds-results.md.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
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
import { machine } from "./util.js";

const PG_URL = process.env.MLSKP_BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const USERS = 20;
const CLIENTS_PER_USER = 2;
const BATCH = 100;
const UPLOADERS = 4;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** DS process counts on PostgreSQL (BENCH_PG_PROCESSES, default 1,2,4). */
const PG_PROCESSES = (process.env.BENCH_PG_PROCESSES ?? "1,2,4").split(",").map(Number);
const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
const ROOT = fileURLToPath(new URL("../", import.meta.url));

interface Target {
  clientId: ClientId;
  publicKey: Uint8Array;
  /** One batch of BATCH packages. */
  batch: Uint8Array[];
}

const uuid = (): string => {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** Generated once and uploaded to every fresh database (the replay table is per database). */
async function generateTargets(): Promise<{ userIds: string[]; targets: Target[] }> {
  const userIds = Array.from({ length: USERS }, uuid);
  const targets: Target[] = [];
  for (const userId of userIds) {
    for (let c = 0; c < CLIENTS_PER_USER; c++) {
      const clientId = ClientId.parse(`${userId}:${c + 1}@bench.example`);
      const cc = await CoreCrypto.open(await Database.inMemory());
      const cred = Credential.basic(SUITE, clientId);
      const ref = await cc.transaction((tx) => tx.addCredential(cred));
      const batch = await cc.transaction(async (tx) => {
        const out: Uint8Array[] = [];
        for (let i = 0; i < BATCH; i++) out.push((await tx.generateKeypackage(ref)).serialize());
        return out;
      });
      targets.push({ clientId, publicKey: cred.publicKey, batch });
    }
  }
  return { userIds, targets };
}

interface Server {
  url: string;
  proc: ChildProcess;
}

async function startServer(db: string, extra: string[]): Promise<Server> {
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, "bin/mlskp.js"),
      "serve",
      "--dev",
      "--db",
      db,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--log-level",
      "warn",
      "--claims-per-minute",
      "10000000",
      "--uploads-per-minute",
      "100000",
      "--registrations-per-minute",
      "100000",
      "--claims-per-target-user",
      "10000000",
      ...extra,
    ],
    { cwd: ROOT, env: { ...process.env, MLSKP_USE_SOURCE: "1" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("server did not start")), 120_000);
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
  return { url, proc };
}

async function stopServer(s: Server): Promise<void> {
  if (s.proc.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => s.proc.once("exit", () => resolve()));
  s.proc.kill("SIGTERM");
  await exited;
}

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

interface Result {
  name: string;
  processes: number;
  uploadKpPerSec: number;
  uploadP50: number;
  uploadP99: number;
  claims: number;
  claimsPerSec: number;
  p50: number;
  p99: number;
  handedOut: number;
  duplicates: number;
  exhausted: number;
  timedOut: boolean;
  /** 1-min load average when the claims started. */
  load: number;
  /** claims/s of every round (set by `rounds`). */
  spread?: number[];
}

async function run(
  name: string,
  servers: Server[],
  data: { userIds: string[]; targets: Target[] },
): Promise<Result> {
  const urls = servers.map((s) => s.url);
  // register and upload: one batch of 100 per target client, UPLOADERS in flight
  const uploadLatencies: number[] = [];
  const queue = data.targets.map((t, i) => ({ t, url: urls[i % urls.length] as string }));
  const up0 = performance.now();
  await Promise.all(
    Array.from({ length: UPLOADERS }, async () => {
      for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
        const ds = new DeliveryServiceClient({ baseUrl: job.url });
        await ds.register({ clientId: job.t.clientId, signatureKeys: new Map([[SUITE, job.t.publicKey]]) });
        const t0 = performance.now();
        await ds.upload(job.t.batch);
        uploadLatencies.push(performance.now() - t0);
      }
    }),
  );
  const uploadSeconds = (performance.now() - up0) / 1000;
  uploadLatencies.sort((a, b) => a - b);

  const claimers = await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      const ds = new DeliveryServiceClient({ baseUrl: urls[i % urls.length] as string });
      const id = ClientId.parse(`${uuid()}:1@bench.example`);
      const cred = Credential.basic(SUITE, id);
      await ds.register({ clientId: id, signatureKeys: new Map([[SUITE, cred.publicKey]]) });
      return ds;
    }),
  );
  // warm-up: one claim per claimer on a throwaway user is not needed; the first second is counted
  const latencies: number[] = [];
  const refs = new Set<string>();
  let handedOut = 0;
  let exhausted = 0;
  let next = 0;
  let timedOut = false;
  const load = loadavg()[0] ?? NaN;
  const deadline = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    claimers.map(async (ds) => {
      for (;;) {
        if (performance.now() > deadline) {
          timedOut = true;
          return;
        }
        const k = next++;
        if (k >= CLAIMS) return;
        const s = performance.now();
        const r = await ds.claim(data.userIds[k % data.userIds.length] as string, SUITE);
        latencies.push(performance.now() - s);
        for (const p of r.keyPackages) {
          handedOut++;
          refs.add(p.ref);
        }
        exhausted += r.exhausted.length;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    name,
    processes: servers.length,
    uploadKpPerSec: (data.targets.length * BATCH) / uploadSeconds,
    uploadP50: pct(uploadLatencies, 50),
    uploadP99: pct(uploadLatencies, 99),
    claims: latencies.length,
    claimsPerSec: latencies.length / seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    handedOut,
    duplicates: handedOut - refs.size,
    exhausted,
    timedOut,
    load,
  };
}

async function withPgSchema<T>(fn: (schema: string) => Promise<T>): Promise<T> {
  const schema = `mlskp_bench_${process.pid}_${randomBytes(3).toString("hex")}`;
  try {
    return await fn(schema);
  } finally {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  }
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0] ?? NaN;
  const g0 = performance.now();
  const data = await generateTargets();
  console.log(
    `generated ${data.targets.length * BATCH} key packages in ${((performance.now() - g0) / 1000).toFixed(1)} s`,
  );
  const pgVersion =
    spawnSync("psql", [PG_URL, "-tAc", "show server_version"], { encoding: "utf8" }).stdout.trim() ||
    "unknown";

  const results: Result[] = [];
  /** Median round by claims/s (every round on a fresh database: packages are consumed). */
  const rounds = async (once: () => Promise<Result>): Promise<Result> => {
    const all: Result[] = [];
    for (let i = 0; i < ROUNDS; i++) all.push(await once());
    all.sort((a, b) => a.claimsPerSec - b.claimsPerSec);
    const mid = all[Math.floor(all.length / 2)] as Result;
    return {
      ...mid,
      spread: all.map((r) => Math.round(r.claimsPerSec)),
      duplicates: all.reduce((n, r) => n + r.duplicates, 0),
    };
  };
  for (const n of PG_PROCESSES) {
    results.push(
      await rounds(() =>
        withPgSchema(async (schema) => {
          const servers: Server[] = [];
          try {
            for (let i = 0; i < n; i++) servers.push(await startServer(PG_URL, ["--pg-schema", schema]));
            return await run(`PostgreSQL, ${n} process${n > 1 ? "es" : ""}`, servers, data);
          } finally {
            await Promise.all(servers.map(stopServer));
          }
        }),
      ),
    );
    console.log(results.at(-1));
  }
  results.push(
    await rounds(async () => {
      const dir = mkdtempSync(join(tmpdir(), "mlskp-bench-"));
      try {
        const s = await startServer(join(dir, "ds.db"), []);
        try {
          return await run("SQLite file (WAL, synchronous=FULL), 1 process", [s], data);
        } finally {
          await stopServer(s);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }),
  );
  console.log(results.at(-1));

  const base = results[0]?.claimsPerSec ?? NaN;
  const f = (x: number, d = 1): string => x.toFixed(d);
  const lines = [
    "# Delivery Service benchmark",
    "",
    `Measured ${new Date().toISOString()} on ${machine()}, PostgreSQL ${pgVersion}, with \`npx tsx bench/ds.ts\`.`,
    "Everything on one machine over loopback: the load generator (this process), the DS processes",
    "(`mlskp serve`, run from source through tsx) and PostgreSQL share the same cores.",
    "",
    `Claims: ${CONCURRENCY} concurrent claimers (spread round-robin over the processes), ${CLAIMS} claims at most`,
    `and ${SECONDS} s at most; each claim returns one package for each of the target user's ${CLIENTS_PER_USER} clients`,
    `(${USERS} users, claimed round-robin, so every claim deletes ${CLIENTS_PER_USER} regular packages).`,
    `Uploads: ${data.targets.length} batches of ${BATCH} packages (full RFC 9420 §10.1 validation, signatures included),`,
    `${UPLOADERS} in flight; signatures verified on the DS's worker pool (default: cores − 1 workers, here 1),`,
    "claims sent by `DeliveryServiceClient` (each with its own `Idempotency-Key`).",
    "",
    `Load average (1 min) before / after: ${loadBefore.toFixed(2)} / ${(loadavg()[0] ?? NaN).toFixed(2)} (column \`load\`: when the`,
    "median round's claims started): other work on the machine during the run widens the spread between rounds.",
    "",
    `Median of ${ROUNDS} rounds by claims/s (all rounds' claims/s in brackets); duplicates summed over all rounds.`,
    "",
    "| configuration | load | claims | claims/s | scaling vs 1 PG process | claim p50 ms | claim p99 ms | packages handed out | duplicates | uploads kp/s | upload batch p50 ms | p99 ms |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...results.map(
      (r) =>
        `| ${r.name} | ${f(r.load, 2)} | ${r.claims}${r.timedOut ? " (time cap)" : ""} | ${f(r.claimsPerSec, 0)} [${(r.spread ?? []).join(", ")}] | ${f(r.claimsPerSec / base, 2)}× | ${f(r.p50)} | ${f(r.p99)} | ${r.handedOut} | ${r.duplicates} | ${f(r.uploadKpPerSec, 0)} | ${f(r.uploadP50)} | ${f(r.uploadP99)} |`,
    ),
    "",
    "Reading the figures: one DS process is one Node thread, and the 2 cores are shared by the load",
    "generator, PostgreSQL and every DS process, so extra processes only get the CPU that is left;",
    "scaling on a machine with cores to spare per process is not measured here. What the",
    "multi-process rows do show is that claims through several processes on one database run",
    "concurrently (`SKIP LOCKED`) and never hand a package out twice (duplicates 0).",
    "",
  ];
  writeFileSync(new URL("./ds-results.md", import.meta.url), lines.join("\n"));
  console.log(lines.join("\n"));
}

await main();
