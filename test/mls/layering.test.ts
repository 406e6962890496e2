/**
 * ARCHITECTURE.md's layering of the engine: each folder of src/mls/ imports only folders below it
 * (codec ← crypto ← credential, keypackage ← tree ← treekem ← keyschedule ← framing ← validation
 * ← group), so there is no import cycle between them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";

const ORDER = [
  "codec",
  "crypto",
  "credential",
  "keypackage",
  "tree",
  "treekem",
  "keyschedule",
  "framing",
  "validation",
  "group",
];
// credential and keypackage share a rank (keypackage uses credential; credential uses neither).
const RANK: Record<string, number> = Object.fromEntries(ORDER.map((f, i) => [f, i]));
RANK.credential = RANK.crypto as number;

const root = join(import.meta.dirname, "../../src/mls");

test("every src/mls folder imports only the folders below it", () => {
  const violations: string[] = [];
  for (const folder of ORDER) {
    for (const file of readdirSync(join(root, folder)).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(join(root, folder, file), "utf8");
      for (const m of text.matchAll(/from "\.\.\/([a-z]+)\//g)) {
        const target = m[1] as string;
        if (!(target in RANK)) continue;
        if ((RANK[target] as number) >= (RANK[folder] as number) && target !== folder)
          violations.push(`${folder}/${file} imports ${target}/`);
      }
    }
  }
  expect(violations).toEqual([]);
});
