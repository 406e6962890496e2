import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { bundleWebExample } from "../../examples/web/build.js";

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

  it("the main entry holds no X.509 library; mls-keypackages/x509 brings them, browser-safe", async () => {
    const inputsOf = async (entry: string): Promise<string[]> => {
      const r = await build({
        entryPoints: [entry],
        bundle: true,
        platform: "browser",
        format: "esm",
        write: false,
        metafile: true,
        logLevel: "silent",
      });
      const code = r.outputFiles[0]!.text;
      expect(code).not.toMatch(/from\s*["']node:/);
      expect(code).not.toMatch(/require\(["']node:/);
      return Object.keys(r.metafile.inputs);
    };
    const heavy = (inputs: string[]): string[] =>
      inputs.filter((p) => /node_modules\/(pkijs|asn1js|@peculiar\/)/.test(p));
    const main = await inputsOf("src/index.ts");
    expect(heavy(main)).toEqual([]);
    // Only the registry and the light PKI modules (types, storage of the environment) come along.
    expect(main.filter((p) => p.startsWith("src/pki/")).sort()).toEqual(
      [
        "src/pki/authentication.ts",
        "src/pki/backend.ts",
        "src/pki/environment.ts",
        "src/pki/lifetime.ts",
        "src/pki/sessionPki.ts",
        "src/pki/status.ts",
        "src/pki/wireUri.ts",
      ].sort(),
    );
    const x509 = await inputsOf("src/pki/index.ts");
    expect(x509.some((p) => p.includes("node_modules/pkijs/"))).toBe(true);
    expect(x509.some((p) => p.includes("node_modules/@peculiar/x509/"))).toBe(true);
    expect(x509.some((p) => p.includes("node_modules/asn1js/"))).toBe(true);
  });

  it("the example page (examples/web) bundles for the browser without any Node-only module", async () => {
    const { js, inputs } = await bundleWebExample({ sourcemap: false });
    expect(inputs).toContain("examples/web/main.ts");
    expect(inputs).toContain("src/keystore/indexeddb.ts");
    expect(inputs).toContain("src/ds/client.ts");
    expect(inputs.filter((p) => /better-sqlite3|node_modules\/(pg|fastify)\//.test(p))).toEqual([]);
    expect(inputs.filter((p) => /^src\/(cli\/|ds\/(?!client\.ts$|wire\.ts$))/.test(p))).toEqual([]);
    expect(
      inputs.filter((p) => /^src\/keystore\/sqlite|^src\/keypackage\/batch(Pool|Worker)\.ts$/.test(p)),
    ).toEqual([]);
    // The page's Node side (the serve script, the build) never comes along.
    expect(inputs.filter((p) => /^examples\/web\/(serve|build)\.ts$/.test(p))).toEqual([]);
    expect(js).not.toMatch(/from\s*["']node:/);
    expect(js).not.toMatch(/require\(["']node:/);
  });

  it("the Chromium vector-check bundle runs only our MLS code: no ts-mls, no Node-only module", async () => {
    const result = await build({
      entryPoints: ["test/browser/crypto-entry.ts"],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((p) => p.includes("node_modules/ts-mls/"))).toEqual([]);
    expect(inputs.filter((p) => p.endsWith("src/mls/crypto/node.ts"))).toEqual([]);
    expect(inputs).toContain("src/mls/group/welcome.ts");
    expect(inputs).toContain("src/mls/keyschedule/schedule.ts");
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from\s*["']node:/);
    expect(code).not.toMatch(/require\(["']node:/);
  });
});
