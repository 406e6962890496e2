import { build } from "esbuild";
import { describe, expect, it } from "vitest";

describe("browser bundle of the main entry", () => {
  it("bundles for the browser without any Node-only module", async () => {
    const result = await build({
      entryPoints: ["src/index.ts"],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((p) => p.includes("better-sqlite3"))).toBe(false);
    // Only the browser-safe DS client may come along; never the server, its stores or the CLI.
    const ours = inputs.filter((p) => p.startsWith("src/"));
    expect(ours.filter((p) => /^src\/(cli\/|ds\/(?!client\.ts$|wire\.ts$))/.test(p))).toEqual([]);
    expect(inputs.some((p) => p.endsWith("src/keystore/sqlite.ts"))).toBe(false);
    expect(inputs.some((p) => p.endsWith("src/keypackage/batchPool.ts"))).toBe(false);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from\s*["']node:/);
    expect(code).not.toMatch(/require\(["']node:/);
  });
});
