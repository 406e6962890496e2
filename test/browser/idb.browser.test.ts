/**
 * The IndexedDB keystore in real headless Chromium: the Keystore contract cases (the same
 * ones vitest runs in Node) plus IndexedDB-specific checks, run in the page by idb-entry.ts.
 */
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { defineKeystoreContract, type ContractApi } from "../keystore/contract-cases.js";
import { withBrowserPage } from "./harness.js";
import type { PageResults } from "./idb-entry.js";

/** How many contract cases there are (registered against a counting API). */
function contractCaseCount(): number {
  let n = 0;
  const api: ContractApi = {
    describe: (_name, body) => body(),
    it: () => void n++,
    beforeEach: () => {},
    afterEach: () => {},
    expect: () => {
      throw new Error("not running");
    },
  };
  defineKeystoreContract(api, "count", async () => {
    throw new Error("not running");
  });
  return n;
}

it("IndexedDB keystore passes the contract and its own checks in headless Chromium", async () => {
  const entry = fileURLToPath(new URL("./idb-entry.ts", import.meta.url));
  const results = await withBrowserPage(
    entry,
    async (page) => {
      await page.waitForFunction(() => (globalThis as { __results?: PageResults }).__results?.done === true);
      return (await page.evaluate(
        () => (globalThis as { __results?: PageResults }).__results,
      )) as PageResults;
    },
    { timeoutMs: 90_000 },
  );
  expect(results.userAgent).toMatch(/Chrome\//);
  expect(results.failed).toEqual([]);
  const contract = contractCaseCount();
  expect(contract).toBeGreaterThan(30);
  expect(results.passed.filter((n) => n.startsWith("Keystore contract: indexeddb (Chromium)"))).toHaveLength(
    contract,
  );
  expect(results.passed.filter((n) => n.startsWith("IndexedDB backend (Chromium)"))).toHaveLength(8);
}, 120_000);
