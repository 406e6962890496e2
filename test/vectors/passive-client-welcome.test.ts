/**
 * passive-client-welcome.json driven through ts-mls (joinGroup, processMessage)
 * with each provider; see ./passive-client.ts.
 */
import { MAIN_PROVIDERS, type SkippedVector, vectorTests } from "./helpers.js";
import { type PassiveClientVector, runPassiveClient } from "./passive-client.js";

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<PassiveClientVector>("passive-client-welcome.json", MAIN_PROVIDERS, async (v, cs) => {
  await runPassiveClient(v, cs);
});
