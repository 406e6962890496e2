/** The simulation's table (Markdown and terminal) and its section of docs/pool.md. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { SimConfig } from "./schedule.js";
import type { WorldResult } from "./world.js";

export const BEGIN = "<!-- simulation:begin (written by `npm run simulate`; edits here are replaced) -->";
export const END = "<!-- simulation:end -->";

export interface SimulationResult {
  config: SimConfig;
  store: "sqlite" | "postgres";
  totalClaims: number;
  pool: WorldResult;
  naive: WorldResult;
  /** Extra figures of the pool policy (totals of its sync reports). */
  poolTotals: Record<string, number>;
  naiveExtras: { uploadsRefused: number; reRegisterRefused: number };
  date: string;
}

const mean = (v: readonly number[]): number => (v.length === 0 ? 0 : v.reduce((a, b) => a + b, 0) / v.length);
const f1 = (n: number): string => (Number.isInteger(n) ? String(n) : n.toFixed(1));

export function rows(r: SimulationResult): [string, string, string][] {
  const days = r.config.days;
  const n = r.config.clients;
  const line = (label: string, get: (w: WorldResult) => string): [string, string, string] => [
    label,
    get(r.pool),
    get(r.naive),
  ];
  const c = (w: WorldResult) => w.counters;
  return [
    line("Welcomes that hit OrphanWelcome", (w) => String(c(w).orphanWelcomes)),
    line("Welcomes refused: the joiner's package expired before it came online", (w) =>
      String(c(w).expiredAtJoin),
    ),
    line("expired packages handed out", (w) => String(c(w).expiredHandedOut)),
    line("stale packages handed out (no private key left)", (w) => String(c(w).staleNoPrivateKey)),
    line("stale packages handed out (rotated-away signature key)", (w) => String(c(w).staleOldKey)),
    line("claims answered with the last-resort package", (w) => String(c(w).lastResortHandedOut)),
    line("claims answered with no package", (w) => String(c(w).exhausted)),
    line("claims (packages handed out)", (w) => `${c(w).claims} (${c(w).handedOut})`),
    line(
      "Welcomes processed (real / keystore-checked)",
      (w) => `${c(w).welcomesFull} / ${c(w).welcomesLight}`,
    ),
    line(
      "DS rows per client, mean over the days (min–max)",
      (w) =>
        `${f1(mean(w.rowsPerClient))} (${f1(Math.min(...w.rowsPerClient))}–${f1(Math.max(...w.rowsPerClient))})`,
    ),
    line("fewest valid packages of an online client (lowest daily sample)", (w) =>
      String(Math.min(...w.minValidOnline)),
    ),
    line("DS requests per client per day", (w) => (c(w).requests / n / days).toFixed(2)),
    line("syncs (crashes injected, errors)", (w) => `${c(w).syncs} (${c(w).crashes}, ${c(w).syncErrors})`),
    line("credential rotations", (w) => String(c(w).rotations)),
    line("key packages in a keystore at the end (mean)", (w) => f1(w.localPerClient)),
    line("real time of the run", (w) => `${(w.realMs / 1000).toFixed(0)} s`),
  ];
}

export function terminalTable(r: SimulationResult): string {
  const all = [["", "pool", "naive"] as [string, string, string], ...rows(r)];
  const wa = Math.max(...all.map((x) => x[0].length));
  const wb = Math.max(...all.map((x) => x[1].length));
  const wc = Math.max(...all.map((x) => x[2].length));
  return all.map(([a, b, c]) => `${a.padEnd(wa)}  ${b.padStart(wb)}  ${c.padStart(wc)}`).join("\n");
}

export function markdownSection(r: SimulationResult, svgName: string): string {
  const cfg = r.config;
  const table = [
    "| per run | pool | naive (24 h, refill to 100) |",
    "| --- | ---: | ---: |",
    ...rows(r).map(([a, b, c]) => `| ${a} | ${b} | ${c} |`),
  ].join("\n");
  const kinds = (w: WorldResult) =>
    Object.entries(w.counters.byKind)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${(v / cfg.clients / cfg.days).toFixed(2)}`)
      .join(", ");
  const t = r.poolTotals;
  return [
    BEGIN,
    "## Simulation",
    "",
    `\`npm run simulate\` (bench/simulate/), run ${r.date}: ${cfg.clients} clients for ${cfg.days} simulated days on a`,
    `virtual clock, over the real library (sessions on in-memory keystores) and a real Delivery Service`,
    `(${r.store === "postgres" ? "PostgreSQL" : "SQLite in memory"}, reached in-process through Fastify's \`inject\`), seed ${cfg.seed}. Both policies live through`,
    `the same schedule: ${r.totalClaims} claims (about ${cfg.claimsPerClientPerDay} per client per day on average, exponentially`,
    `distributed rates, plus a burst of 40–140 claims within 1–3 hours for ${Math.round(cfg.burstShare * 100)}% of the clients),`,
    `${Math.round(cfg.offlineShare * 100)}% of the clients going offline for 1–6 days at a time (Welcomes queue meanwhile and are`,
    `processed when they come back, before the upkeep runs), one credential rotation for ${Math.round(cfg.rotationShare * 100)}% of them, and`,
    `a crash drawn for ${Math.round(cfg.crashRate * 100)}% of the syncs (the DS connection fails after 0–3 requests, if the sync gets that`,
    `far; the app restarts with a new pool object over the same keystore and syncs again).`,
    "",
    `Every claim is checked when it is handed out (expired? signed by a rotated-away key? private keys`,
    `still in the owner's keystore?). Every ${cfg.welcomeEvery}th claim is followed by a real Welcome (the claimer creates a`,
    `conversation and adds the package; the owner runs \`processWelcomeMessage\`); for the others the owner`,
    `does what \`processWelcomeMessage\` does with the package (look up its private keys, delete them unless`,
    `last resort), which keeps the default run to a few minutes on 2 cores.`,
    "",
    `- **pool**: \`cc.keypackagePool({ ds, credential })\` with its defaults (target 100, low water 25,`,
    `  rotate 14 days before expiry, one last resort, grace 7 days); \`sync()\` when the client comes online,`,
    `  every 24 h (\`run()\`'s default is 1 h), and right after a claim that leaves it under low water or`,
    `  takes its last resort (the DS's \`claimed\` event, fed to \`pool.handleEvent\` as \`run()\` does);`,
    `  \`pool.rotateCredential(newRef)\` to rotate.`,
    `- **naive**: every 24 h \`count\`, refill to 100 (+ a last resort when none is counted), prune expired`,
    `  packages locally, no reconciliation; rotation the README's old way (new credential, then the old one`,
    `  removed locally), after which the DS refuses its uploads (\`signature_key_mismatch\`) and`,
    `  registering again answers 409.`,
    "",
    table,
    "",
    `Pool work over the run: ${t.generated ?? 0} packages generated, ${t.uploaded ?? 0} uploaded, ${t.rotated ?? 0} replaced before expiry,`,
    `${t.deletedOnDs ?? 0} deleted on the DS, ${t.prunedLocally ?? 0} pruned locally, ${t.lastResortReplaced ?? 0} last-resort replacements.`,
    `Naive: ${r.naiveExtras.uploadsRefused} uploads refused by the DS, ${r.naiveExtras.reRegisterRefused} re-registrations refused (409).`,
    "",
    `Requests per client per day by kind — pool: ${kinds(r.pool)}; naive: ${kinds(r.naive)}.`,
    "",
    `![DS rows per client over time](${svgName})`,
    "",
    `Rerun: \`npm run simulate\` (options: \`--clients\`, \`--days\`, \`--seed\`, \`--pg\`, \`--claims-per-day\`,`,
    `\`--welcome-every\`, \`--sequential\`, \`--no-write\`).`,
    END,
  ].join("\n");
}

/** Replace the section between the markers in `path` (append it when absent). */
export function writeSection(path: string, section: string): void {
  const text = existsSync(path) ? readFileSync(path, "utf8") : "# Key package pool\n";
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  const next =
    a >= 0 && b > a
      ? text.slice(0, a) + section + text.slice(b + END.length)
      : `${text.replace(/\n*$/, "\n\n")}${section}\n`;
  writeFileSync(path, next);
}
