/** Run both policies on one schedule and collect the figures. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { NaivePolicy } from "./naive.js";
import { PoolPolicy } from "./poolPolicy.js";
import type { SimulationResult } from "./report.js";
import { makeSchedule, type SimConfig } from "./schedule.js";
import { World, type WorldResult } from "./world.js";

export interface RunOptions {
  /** PostgreSQL URL; each policy gets its own fresh schema (dropped afterwards). */
  pgUrl?: string;
  /** Progress, once per simulated day. */
  onDay?: (policy: string, day: number) => void;
  /** Run the two policies at once in two child processes (one per core). Default false. */
  parallel?: boolean;
}

export type PolicyName = "pool" | "naive";

/** One policy's run: its world's figures and the policy's own totals. */
export interface PolicyRun {
  result: WorldResult;
  extras: Record<string, number>;
}

export async function runPolicy(
  config: SimConfig,
  name: PolicyName,
  options: Omit<RunOptions, "parallel"> = {},
): Promise<PolicyRun> {
  const policy = name === "pool" ? new PoolPolicy() : new NaivePolicy();
  const schedule = makeSchedule(config);
  const schema =
    options.pgUrl !== undefined ? `mlskp_sim_${name}_${process.pid}_${Date.now().toString(36)}` : undefined;
  const world = await World.create({
    schedule,
    policy,
    ...(options.pgUrl !== undefined && schema !== undefined ? { pg: { url: options.pgUrl, schema } } : {}),
  });
  try {
    await world.setup();
    const result = await world.run((day) => options.onDay?.(name, day));
    const extras: Record<string, number> =
      policy instanceof PoolPolicy
        ? { ...policy.totals }
        : { uploadsRefused: policy.uploadsRefused, reRegisterRefused: policy.reRegisterRefused };
    return { result, extras };
  } finally {
    await world.close();
    if (options.pgUrl !== undefined && schema !== undefined) {
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: options.pgUrl });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    }
  }
}

/** One policy in a child process (bench/simulate/child.ts); progress lines on its stderr. */
function runChild(config: SimConfig, name: PolicyName, options: RunOptions): Promise<PolicyRun> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      fileURLToPath(new URL("./child.ts", import.meta.url)),
      name,
      JSON.stringify(config),
      options.pgUrl ?? "",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
    for (const m of d.toString().matchAll(/^day (\d+)$/gm)) options.onDay?.(name, Number(m[1]));
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`simulation of ${name} exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as PolicyRun);
      } catch (e) {
        reject(new Error(`simulation of ${name}: no result (${(e as Error).message}): ${err}`));
      }
    });
  });
}

export async function simulate(config: SimConfig, options: RunOptions = {}): Promise<SimulationResult> {
  const [pool, naive] = options.parallel
    ? await Promise.all([runChild(config, "pool", options), runChild(config, "naive", options)])
    : [await runPolicy(config, "pool", options), await runPolicy(config, "naive", options)];
  return {
    config,
    store: options.pgUrl !== undefined ? "postgres" : "sqlite",
    totalClaims: makeSchedule(config).totalClaims,
    pool: pool.result,
    naive: naive.result,
    poolTotals: pool.extras,
    naiveExtras: {
      uploadsRefused: naive.extras.uploadsRefused ?? 0,
      reRegisterRefused: naive.extras.reRegisterRefused ?? 0,
    },
    date: new Date().toISOString().slice(0, 10),
  };
}
