/** One policy of the simulation in its own process: `child.ts <pool|naive> <config JSON> [pg URL]`. */
import { runPolicy, type PolicyName } from "./run.js";
import type { SimConfig } from "./schedule.js";

const [name, configJson, pgUrl] = process.argv.slice(2);
if (name !== "pool" && name !== "naive")
  throw new Error("usage: child.ts <pool|naive> <config JSON> [pg URL]");
const run = await runPolicy(JSON.parse(configJson ?? "{}") as SimConfig, name as PolicyName, {
  ...(pgUrl !== undefined && pgUrl !== "" ? { pgUrl } : {}),
  onDay: (_policy, day) => process.stderr.write(`day ${day}\n`),
});
process.stdout.write(JSON.stringify(run) + "\n");
