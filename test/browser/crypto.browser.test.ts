/**
 * Our engine on the WebCrypto provider in real headless Chromium (Debian's
 * /usr/bin/chromium via playwright-core): crypto-basics vectors for every
 * suite and a key package build/encode/decode/verify round trip (our builder
 * and §10.1 checks) for every suite, with native WebCrypto and with the forced
 * @noble fallbacks.
 *
 * A second test runs key-schedule, secret-tree, welcome and
 * passive-client-welcome (join with our verifyWelcome/joinGroup, epoch
 * authenticator) in the page with both provider variants; see vector-checks.ts.
 * The page bundle holds no other MLS implementation (bundle.test.ts).
 *
 * A missing Chromium fails this test (CI installs it); missing vectors skip
 * only the vector part, loudly.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import type { Page } from "playwright-core";
import { VECTORS_DIR, loadVectors } from "../vectors/helpers.js";
import { type StaticRoute, withBrowserPage } from "./harness.js";
import { CHECKS_PER_CASE, type Check, type VectorFile } from "./vector-checks.js";

interface CryptoTestApi {
  basics(provider: string): Promise<Check[]>;
  keyPackages(provider: string): Promise<Check[]>;
  vectorFile(file: string, provider: string): Promise<{ cases: number; checks: Check[] }>;
  env(): Promise<{
    isNode: boolean;
    selectedIsWebCrypto: boolean;
    secureContext: boolean;
    nativeEd25519: boolean;
    nativeX25519: boolean;
    wasmSha256: boolean;
  }>;
}

const vectors = loadVectors<{ cipher_suite: number }>("crypto-basics.json");
const routes: Record<string, StaticRoute> = {};
if (vectors !== undefined) {
  routes["/vectors/crypto-basics.json"] = {
    body: readFileSync(join(VECTORS_DIR, "crypto-basics.json")),
    contentType: "application/json",
  };
}

/** The vector files also run in the page, with their Node-side case lists (undefined: missing). */
const VECTOR_FILES = Object.keys(CHECKS_PER_CASE) as VectorFile[];
const fileVectors = new Map<VectorFile, Array<{ cipher_suite: number }> | undefined>();
for (const file of VECTOR_FILES) {
  const v = loadVectors<{ cipher_suite: number }>(file);
  fileVectors.set(file, v);
  if (v !== undefined) {
    routes[`/vectors/${file}`] = {
      body: readFileSync(join(VECTORS_DIR, file)),
      contentType: "application/json",
    };
  }
}
const BROWSER_PROVIDERS = ["webcrypto", "webcrypto-noble"] as const;

/** page.evaluate of globalThis.cryptoTest[fn](...args). */
function callApi<K extends keyof CryptoTestApi>(
  page: Page,
  fn: K,
  ...args: Parameters<CryptoTestApi[K]>
): ReturnType<CryptoTestApi[K]> {
  return page.evaluate(
    ([f, a]) =>
      (globalThis as unknown as { cryptoTest: Record<string, (...x: string[]) => Promise<unknown>> })
        .cryptoTest[f]!(...a),
    [fn, args as string[]] as const,
  ) as ReturnType<CryptoTestApi[K]>;
}

function failures(checks: readonly Check[]): string[] {
  return checks.filter((c) => !c.ok).map((c) => `suite ${c.suite} ${c.name}: ${c.detail ?? ""}`);
}

describe("WebCrypto provider in headless Chromium", () => {
  test("crypto-basics vectors and key packages, every suite, native and noble", async () => {
    const result = await withBrowserPage(
      "test/browser/crypto-entry.ts",
      async (page: Page) => {
        const call = <K extends keyof CryptoTestApi>(fn: K, ...args: Parameters<CryptoTestApi[K]>) =>
          callApi(page, fn, ...args);
        return {
          env: await call("env"),
          basics:
            vectors === undefined
              ? undefined
              : { native: await call("basics", "webcrypto"), noble: await call("basics", "webcrypto-noble") },
          keyPackages: {
            native: await call("keyPackages", "webcrypto"),
            noble: await call("keyPackages", "webcrypto-noble"),
          },
        };
      },
      { routes },
    );

    expect(result.env.isNode).toBe(false);
    expect(result.env.secureContext).toBe(true);
    expect(result.env.selectedIsWebCrypto).toBe(true);
    // The provider hashes with hash-wasm's WebAssembly SHA-2 in Chromium (web-hash.ts).
    expect(result.env.wasmSha256).toBe(true);
    console.info(
      `[browser] native Ed25519: ${result.env.nativeEd25519}, native X25519: ${result.env.nativeX25519}`,
    );

    if (result.basics === undefined) {
      console.warn("[browser] crypto-basics vectors missing: vector checks SKIPPED");
    } else {
      for (const checks of [result.basics.native, result.basics.noble]) {
        expect(failures(checks)).toEqual([]);
        expect(new Set(checks.map((c) => c.suite))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7]));
        expect(checks).toHaveLength(7 * 8);
      }
    }
    for (const checks of [result.keyPackages.native, result.keyPackages.noble]) {
      expect(failures(checks)).toEqual([]);
      expect(checks).toHaveLength(7);
    }
  }, 120_000);

  test("key-schedule, secret-tree, welcome and passive-client-welcome vectors, native and noble", async () => {
    const present = VECTOR_FILES.filter((f) => fileVectors.get(f) !== undefined);
    for (const f of VECTOR_FILES.filter((x) => !present.includes(x))) {
      console.warn(`[browser] ${f} missing: its browser vector checks SKIPPED`);
    }
    if (present.length === 0) return;

    const started = Date.now();
    const results = await withBrowserPage(
      "test/browser/crypto-entry.ts",
      async (page: Page) => {
        const out: Array<{ file: VectorFile; provider: string; cases: number; checks: Check[] }> = [];
        for (const file of present) {
          for (const provider of BROWSER_PROVIDERS) {
            out.push({ file, provider, ...(await callApi(page, "vectorFile", file, provider)) });
          }
        }
        return out;
      },
      { routes, timeoutMs: 90_000 },
    );

    expect(results).toHaveLength(present.length * BROWSER_PROVIDERS.length);
    for (const { file, provider, cases, checks } of results) {
      const vectors = fileVectors.get(file)!;
      const perCase = CHECKS_PER_CASE[file].length;
      expect(vectors.length, file).toBeGreaterThan(0);
      expect(cases, `${file} ${provider}: cases seen in the page`).toBe(vectors.length);
      expect(failures(checks), `${file} ${provider}`).toEqual([]);
      expect(checks, `${file} ${provider}: ${cases} cases x ${perCase} checks`).toHaveLength(cases * perCase);
      expect(new Set(checks.map((c) => c.suite)), `${file} ${provider}: suites`).toEqual(
        new Set(vectors.map((v) => v.cipher_suite)),
      );
      console.info(`[browser] ${file} (${provider}): ${cases} cases, ${checks.length} checks passed`);
    }
    console.info(`[browser] vector files in Chromium: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 120_000);
});
