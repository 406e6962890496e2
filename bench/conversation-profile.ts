/**
 * Our side of the conversation benchmark alone, for speed work (not part of `npm run bench`):
 *
 *   npx tsx bench/conversation-profile.ts [case…]            ms/op per case (best of rounds)
 *   BENCH_COUNT=1 npx tsx bench/conversation-profile.ts       + node:crypto calls per operation
 *   node --cpu-prof --import tsx bench/conversation-profile.ts add100   a CPU profile
 *
 * The call counts are what bench/conversation.ts's primitive floors replay.
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { CASES, OPS, fillers, oursBench, type CaseName } from "./conversationOurs.js";
import { fmt } from "./util.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 15);
const wanted = process.argv.slice(2);
const names = CASES.map(([k]) => k).filter((k) => wanted.length === 0 || wanted.includes(k));

/** Counts calls of the node:crypto functions that do the primitive work. */
const counts = new Map<string, number>();
let counting = false;
if (process.env.BENCH_COUNT === "1") {
  const crypto = createRequire(import.meta.url)("node:crypto") as Record<string, unknown>;
  const wrap = (name: string, detail?: (args: unknown[]) => string): void => {
    const f = crypto[name] as (...a: unknown[]) => unknown;
    crypto[name] = function (this: unknown, ...args: unknown[]) {
      if (counting) {
        const k = detail === undefined ? name : `${name}(${detail(args)})`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      return f.apply(this, args);
    };
  };
  const kty = (a: unknown[]): string => {
    const k = a[0] as { key?: { crv?: string }; format?: string };
    return `${k.key?.crv ?? "?"} ${k.format ?? ""}`;
  };
  wrap("createHmac");
  wrap("createHash");
  const size =
    (i: number) =>
    (a: unknown[]): string => {
      const n = (a[i] as Uint8Array).length;
      return n < 1024 ? "<1K" : `${Math.round(n / 1024)}K`;
    };
  wrap("sign", size(1));
  wrap("verify", size(1));
  wrap("diffieHellman");
  wrap("createPrivateKey", kty);
  wrap("createPublicKey", kty);
  wrap("createCipheriv", (a) => String(a[0]));
  wrap("createDecipheriv", (a) => String(a[0]));
  wrap("randomFillSync");
  syncBuiltinESMExports();
}

const fill = await fillers();
const ours = await oursBench(fill);
if (process.env.BENCH_PROFILE === "1") {
  // Every input first, then only the runs: samples after the printed monotonic time (µs, the
  // clock of --cpu-prof) are the cases' own.
  const c = ours[names[0] as CaseName];
  const inputs: unknown[] = [];
  for (let i = 0; i < WARMUP_ROUNDS + ROUNDS; i++) inputs.push(await c.prepare());
  console.error(`timed-from-us ${process.hrtime.bigint() / 1000n}`);
  // BENCH_ALLOC=<file>: a sampling profile of every allocation of the runs (collected or not).
  const alloc = process.env.BENCH_ALLOC;
  const session = alloc === undefined ? undefined : new Session();
  const post = (method: string, params: object = {}): Promise<unknown> =>
    new Promise((resolve, reject) =>
      session?.post(method, params, (e, r) => (e === null ? resolve(r) : reject(e))),
    );
  if (session !== undefined) {
    session.connect();
    await post("HeapProfiler.startSampling", {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const t0 = performance.now();
  for (const input of inputs) await c.run(input);
  console.log(`${names[0]} ${fmt((performance.now() - t0) / OPS / inputs.length)} ms/op (profiled)`);
  if (alloc !== undefined) {
    const { profile } = (await post("HeapProfiler.stopSampling")) as { profile: unknown };
    writeFileSync(alloc, JSON.stringify(profile));
  }
  process.exit(0);
}
for (const k of names) {
  const c = ours[k as CaseName];
  let best = Number.POSITIVE_INFINITY;
  let bestCpu = Number.POSITIVE_INFINITY;
  for (let round = 1 - WARMUP_ROUNDS; round <= ROUNDS; round++) {
    // CPU time of this process too: less sensitive than wall time to other load on the machine.
    const input = await c.prepare();
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    await c.run(input);
    const t = (performance.now() - t0) / OPS;
    const u = process.cpuUsage(u0);
    if (round > 0) {
      best = Math.min(best, t);
      bestCpu = Math.min(bestCpu, (u.user + u.system) / 1000 / OPS);
    }
  }
  let line = `${k.padEnd(11)} ${fmt(best).padStart(7)} ms/op  (cpu ${fmt(bestCpu)} ms/op)`;
  if (process.env.BENCH_COUNT === "1") {
    counts.clear();
    const input = await c.prepare();
    counting = true;
    await c.run(input);
    counting = false;
    const per = [...counts].map(([n, v]) => `${n}: ${(v / OPS).toFixed(1)}`).join(", ");
    line += `\n    ${per}`;
  }
  console.log(line);
}
