/**
 * The WebCrypto provider in real headless Chromium (Debian's /usr/bin/chromium
 * via playwright-core): crypto-basics vectors for every suite and a ts-mls
 * key package generate/encode/decode/verify round trip for every suite, with
 * native WebCrypto and with the forced @noble fallbacks.
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
import type { Check } from "./crypto-entry.js";

interface CryptoTestApi {
  basics(provider: string): Promise<Check[]>;
  keyPackages(provider: string): Promise<Check[]>;
  env(): Promise<{
    isNode: boolean;
    selectedIsWebCrypto: boolean;
    secureContext: boolean;
    nativeEd25519: boolean;
    nativeX25519: boolean;
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

function failures(checks: readonly Check[]): string[] {
  return checks.filter((c) => !c.ok).map((c) => `suite ${c.suite} ${c.name}: ${c.detail ?? ""}`);
}

describe("WebCrypto provider in headless Chromium", () => {
  test("crypto-basics vectors and key packages, every suite, native and noble", async () => {
    const result = await withBrowserPage(
      "test/browser/crypto-entry.ts",
      async (page: Page) => {
        const call = <K extends keyof CryptoTestApi>(fn: K, arg?: string) =>
          page.evaluate(
            ([f, a]) =>
              (globalThis as unknown as { cryptoTest: Record<string, (x?: string) => Promise<unknown>> })
                .cryptoTest[f]!(a),
            [fn, arg] as const,
          ) as ReturnType<CryptoTestApi[K]>;
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
});
