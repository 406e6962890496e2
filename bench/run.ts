/**
 * `npm run bench`: runs every benchmark in its own process, one after another (so they
 * don't compete for the two cores), then writes BENCHMARKS.md from their results.
 * `npm run bench -- lifecycle keystore` runs a subset; `npm run bench -- --assemble` only rebuilds
 * BENCHMARKS.md. bench/targets.md (the issues' targets against the latest figures) is kept by hand.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { machine } from "./util.js";

const ALL = ["lifecycle", "crypto", "keystore", "conversation", "ds", "browser", "bundle-size"];
/** Run only when named (`npm run bench -- ds-scale`): ds-scale fills PostgreSQL to 5M packages (~40 min, ~12 GB). */
const NAMED = ["ds-scale"];
/** Order of the sections in BENCHMARKS.md. */
const SECTIONS = [
  "lifecycle",
  "crypto",
  "keystore",
  "conversation",
  "ds",
  "ds-scale",
  "browser",
  "bundle-size",
];
const args = process.argv.slice(2);
const wanted = args.filter((a) => ALL.includes(a) || NAMED.includes(a));
// `--assemble`: only rebuild BENCHMARKS.md from the existing results.
const run = args.includes("--assemble") ? [] : wanted.length > 0 ? wanted : ALL;

for (const name of run) {
  const script = new URL(`./${name}.ts`, import.meta.url);
  if (!existsSync(script)) {
    console.error(`bench/${name}.ts is missing`);
    process.exitCode = 1;
    continue;
  }
  console.log(`\n=== bench/${name}.ts`);
  const r = spawnSync(process.execPath, ["--import", "tsx", script.pathname], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`bench/${name}.ts failed (exit ${r.status})`);
    process.exitCode = 1;
  }
}

const sections = SECTIONS.map((name) => new URL(`./${name}-results.md`, import.meta.url))
  .filter((u) => existsSync(u))
  .map((u) => readFileSync(u, "utf8").trim());
const header = `# Benchmarks

Written by \`npm run bench\` (bench/run.ts). Benchmarks are not tests: they assert nothing. Absolute times on
these shared machines vary from run to run, so each table compares implementations **measured in the same
run on the same machine**; read the ratios.

Assembled ${new Date().toISOString().slice(0, 10)} on ${machine()}; each section says when it was measured.
`;
const targets = readFileSync(new URL("./targets.md", import.meta.url), "utf8").trim();
writeFileSync(
  new URL("../BENCHMARKS.md", import.meta.url),
  `${header}\n${targets}\n\n${sections.join("\n\n")}\n`,
);
console.log("\nBENCHMARKS.md written");
