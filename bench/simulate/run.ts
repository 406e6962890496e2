/** Run both policies on one schedule and collect the figures. */
import { NaivePolicy } from "./naive.js";
import { PoolPolicy } from "./poolPolicy.js";
import type { SimulationResult } from "./report.js";
import { makeSchedule, type SimConfig } from "./schedule.js";
import { World, type Policy, type WorldResult } from "./world.js";

export interface RunOptions {
  /** PostgreSQL URL; each policy gets its own fresh schema (dropped afterwards). */
  pgUrl?: string;
  /** Progress, once per simulated day. */
  onDay?: (policy: string, day: number) => void;
}

async function runPolicy(
  config: SimConfig,
  policy: Policy,
  options: RunOptions,
): Promise<WorldResult> {
  const schedule = makeSchedule(config);
  let schema: string | undefined;
  if (options.pgUrl !== undefined) {
    schema = `mlskp_sim_${policy.name}_${process.pid}_${Date.now().toString(36)}`;
  }
  const world = await World.create({
    schedule,
    policy,
    ...(options.pgUrl !== undefined && schema !== undefined ? { pg: { url: options.pgUrl, schema } } : {}),
  });
  try {
    await world.setup();
    return await world.run((day) => options.onDay?.(policy.name, day));
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

export async function simulate(config: SimConfig, options: RunOptions = {}): Promise<SimulationResult> {
  const poolPolicy = new PoolPolicy();
  const naivePolicy = new NaivePolicy();
  const pool = await runPolicy(config, poolPolicy, options);
  const naive = await runPolicy(config, naivePolicy, options);
  return {
    config,
    store: options.pgUrl !== undefined ? "postgres" : "sqlite",
    totalClaims: makeSchedule(config).totalClaims,
    pool,
    naive,
    poolTotals: { ...poolPolicy.totals },
    naiveExtras: { uploadsRefused: naivePolicy.uploadsRefused, reRegisterRefused: naivePolicy.reRegisterRefused },
    date: new Date().toISOString().slice(0, 10),
  };
}
