/**
 * passive-client-handling-commit.json through OUR engine (src/mls/group: verifyWelcome, joinGroup,
 * receiveMessage) with each main provider; see test/vectors/passive-client.ts.
 */
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import { MAIN_PROVIDERS, type SkippedVector, vectorTests } from "../../vectors/helpers.js";
import { type PassiveClientVector, runPassiveClient } from "../../vectors/passive-client.js";

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<PassiveClientVector>("passive-client-handling-commit.json", MAIN_PROVIDERS, async (v, cs) => {
  await runPassiveClient(v, cs as unknown as CiphersuiteImpl);
});
