/**
 * passive-client-random.json driven through ts-mls (joinGroup, processMessage)
 * with each provider; see ./passive-client.ts.
 */
import { describe, test } from "vitest";
import { MAIN_PROVIDERS, type SkippedVector, reportMissing, cases, impl, loadVectors } from "./helpers.js";
import { type PassiveClientVector, runPassiveClient } from "./passive-client.js";

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

const vectors = loadVectors<PassiveClientVector>("passive-client-random.json");
reportMissing("passive-client-random.json", vectors);

describe.skipIf(vectors === undefined)("passive-client-random vectors", () => {
  describe.each(MAIN_PROVIDERS)("%s provider", (_name, provider) => {
    test.each(cases(vectors))("%s", async (_label, v) => {
      await runPassiveClient(v, await impl(provider, v.cipher_suite));
    });
  });
});
