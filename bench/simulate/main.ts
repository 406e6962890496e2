/**
 * `npm run simulate`: the key package pool against the naive policy, N clients over simulated
 * days (see docs/pool.md#simulation). Prints the table and rewrites docs/pool.md's "Simulation"
 * section and docs/pool-rows.svg (unless --no-write).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import * as prettier from "prettier";
import { markdownSection, terminalTable, writeSection } from "./report.js";
import { simulate } from "./run.js";
import { DEFAULT_CONFIG, type SimConfig } from "./schedule.js";
import { lineChart } from "./svg.js";

const { values } = parseArgs({
  options: {
    clients: { type: "string" },
    days: { type: "string" },
    seed: { type: "string" },
    "claims-per-day": { type: "string" },
    "welcome-every": { type: "string" },
    pg: { type: "boolean" },
    "pg-url": { type: "string" },
    "no-write": { type: "boolean" },
    sequential: { type: "boolean" },
  },
});

const num = (v: string | undefined, d: number): number => {
  if (v === undefined) return d;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`simulate: expected a positive number, got ${v}\n`);
    process.exit(2);
  }
  return n;
};

const config: SimConfig = {
  ...DEFAULT_CONFIG,
  clients: Math.floor(num(values.clients, DEFAULT_CONFIG.clients)),
  days: Math.floor(num(values.days, DEFAULT_CONFIG.days)),
  seed: Math.floor(num(values.seed, DEFAULT_CONFIG.seed)),
  claimsPerClientPerDay: num(values["claims-per-day"], DEFAULT_CONFIG.claimsPerClientPerDay),
  welcomeEvery: Math.floor(num(values["welcome-every"], DEFAULT_CONFIG.welcomeEvery)),
};
const pgUrl =
  values.pg === true || values["pg-url"] !== undefined
    ? (values["pg-url"] ?? process.env.MLSKP_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test")
    : undefined;

console.log(
  `simulating ${config.clients} clients × ${config.days} days (seed ${config.seed}, ${pgUrl ? "PostgreSQL" : "SQLite"}): pool and naive`,
);
const bars = new cliProgress.MultiBar(
  {
    format: "  {policy} {bar} day {value}/{total}",
    hideCursor: true,
    noTTYOutput: true,
    notTTYSchedule: 20_000,
  },
  cliProgress.Presets.shades_classic,
);
const bar = {
  pool: bars.create(config.days, 0, { policy: "pool " }),
  naive: bars.create(config.days, 0, { policy: "naive" }),
};
// Both policies at once, one process each (2 cores); --sequential keeps them in this process.
const result = await simulate(config, {
  ...(pgUrl !== undefined ? { pgUrl } : {}),
  parallel: values.sequential !== true,
  onDay: (policy, day) => bar[policy as "pool" | "naive"].update(day),
});
bars.stop();
console.log(`\n${terminalTable(result)}\n`);

if (values["no-write"] !== true) {
  const docs = fileURLToPath(new URL("../../docs/", import.meta.url));
  const svg = lineChart(
    [
      { name: "pool", color: "#1f77b4", values: result.pool.rowsPerClient },
      {
        name: "naive (24 h, refill to 100)",
        color: "#d62728",
        values: result.naive.rowsPerClient,
        dashed: true,
      },
    ],
    {
      title: `DS rows per client (${config.clients} clients, seed ${config.seed})`,
      xLabel: "simulated day",
      yLabel: "stored key packages per client",
    },
  );
  writeFileSync(`${docs}pool-rows.svg`, svg);
  const md = `${docs}pool.md`;
  writeSection(md, markdownSection(result, "pool-rows.svg"));
  // Formatted like the rest of the docs (aligned tables), so that reruns only change figures.
  const style = (await prettier.resolveConfig(md)) ?? {};
  writeFileSync(md, await prettier.format(readFileSync(md, "utf8"), { ...style, filepath: md }));
  console.log("wrote docs/pool.md (Simulation section) and docs/pool-rows.svg");
}
