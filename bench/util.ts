/** Shared helpers for the benchmarks (not tests: nothing here asserts). */
import { cpus, availableParallelism, totalmem } from "node:os";
import { writeFileSync } from "node:fs";

export function machine(): string {
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  return `${cpu}, ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** Run `fn` (which performs `ops` operations) `rounds` times after a warm-up; returns the best ms/op. */
export async function measure(ops: number, fn: () => Promise<void>, rounds = 3): Promise<number> {
  await fn();
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / ops);
  }
  return best;
}

export interface Row {
  name: string;
  msPerOp: number;
  /** name of the row to compare against, → ratio column "× vs <name>" */
  note?: string;
}

export function fmt(ms: number): string {
  return ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

/** A markdown table: ms/op, ops/s, and a speed-up column per anchor (anchor ms / row ms). */
export function table(rows: Row[], anchors: string[]): string {
  const byName = new Map(rows.map((r) => [r.name, r.msPerOp]));
  const head = `| operation | ms/op | ops/s | ${anchors.map((a) => `speed-up vs ${a}`).join(" | ")} |`;
  const sep = `| --- | ---: | ---: | ${anchors.map(() => "---:").join(" | ")} |`;
  const lines = rows.map((r) => {
    const ratios = anchors.map((a) => {
      const base = byName.get(a);
      return base === undefined ? "" : `${(base / r.msPerOp).toFixed(2)}×`;
    });
    return `| ${r.name}${r.note ? ` (${r.note})` : ""} | ${fmt(r.msPerOp)} | ${Math.round(1000 / r.msPerOp).toLocaleString("en-US")} | ${ratios.join(" | ")} |`;
  });
  return [head, sep, ...lines].join("\n");
}

/** Each benchmark writes bench/<name>-results.md; bench/run.ts assembles them into BENCHMARKS.md. */
export function writeResult(name: string, markdown: string): void {
  writeFileSync(new URL(`./${name}-results.md`, import.meta.url), markdown);
}
