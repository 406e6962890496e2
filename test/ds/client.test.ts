import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import * as root from "../../src/index.js";
import { DeliveryServiceClient, DeliveryServiceError } from "../../src/ds/client.js";
import { ROOT } from "./helpers.js";

/** Every module reachable from `entry` through static imports (relative ones followed). */
function importGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const src = readFileSync(file, "utf8");
    for (const m of src.matchAll(/^\s*(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gms)) {
      const spec = m[1] as string;
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec.replace(/\.js$/, ".ts")));
      else packages.add(spec);
    }
    for (const m of src.matchAll(/import\(\s*"([^"]+)"\s*\)/g)) packages.add(m[1] as string);
  };
  visit(entry);
  return { files: [...files], packages: [...packages] };
}

describe("DeliveryServiceClient", () => {
  it("is browser-safe: no Node built-in, no Buffer or process in its import graph", () => {
    const { files, packages } = importGraph(join(ROOT, "src/ds/client.ts"));
    expect(files.length).toBeGreaterThanOrEqual(4);
    const node = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    expect(packages.filter((p) => node.has(p) || p.startsWith("node:"))).toEqual([]);
    expect(packages).toEqual([]); // nothing outside this package at all
    for (const f of files) {
      const code = readFileSync(f, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      expect(code, f).not.toMatch(/\bBuffer\b|\bprocess\./);
    }
  });

  it("is exported from the package root", () => {
    expect(root.DeliveryServiceClient).toBe(DeliveryServiceClient);
    expect(root.DeliveryServiceError).toBe(DeliveryServiceError);
  });

  it("uses an injected fetch and maps error bodies to DeliveryServiceError", async () => {
    const seen: { url: string; init: RequestInit | undefined }[] = [];
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      seen.push({ url: String(url), init });
      return new Response(
        JSON.stringify({
          error: "invalid_key_packages",
          message: "1 of 1 rejected",
          rejected: [{ index: 0, rule: "decode", message: "x" }],
        }),
        { status: 422, headers: { "content-type": "application/json" } },
      );
    }) as typeof fetch;
    const ds = new DeliveryServiceClient({
      baseUrl: "http://ds.test/",
      clientId: "u:1@d",
      token: "tok",
      fetch: fakeFetch,
    });
    const err = await ds.upload([new Uint8Array([1, 2, 3])]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryServiceError);
    expect(err).toMatchObject({
      code: "DeliveryServiceError",
      status: 422,
      error: "invalid_key_packages",
      rules: ["decode"],
    });
    expect(String(err)).not.toContain("tok");
    expect(seen[0]?.url).toBe("http://ds.test/v1/clients/u%3A1%40d/key-packages");
    expect(seen[0]?.init?.method).toBe("POST");
    expect((seen[0]?.init?.headers as Record<string, string>).authorization).toBe("Bearer tok");
    expect(JSON.parse(String(seen[0]?.init?.body))).toEqual({ keyPackages: ["AQID"] });
  });

  it("maps a non-JSON error to http_<status>", async () => {
    const fakeFetch = (async () =>
      new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" })) as typeof fetch;
    const ds = new DeliveryServiceClient({
      baseUrl: "http://ds.test",
      clientId: "c",
      token: "t",
      fetch: fakeFetch,
    });
    await expect(ds.count(1)).rejects.toMatchObject({ status: 502, error: "http_502", rejected: [] });
  });
});
