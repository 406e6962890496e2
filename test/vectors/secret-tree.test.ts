/**
 * secret-tree.json (RFC 9420 §6.3.2 and §9) through our code: sender-data key/nonce
 * (src/mls/framing) and the per-leaf handshake/application ratchets of our lazy secret tree
 * (src/mls/keyschedule/secretTree.ts).
 */
import { expect } from "vitest";
import { senderDataKeyNonce } from "../../src/mls/framing/private.js";
import { ContentTypes } from "../../src/mls/framing/types.js";
import { SecretTree } from "../../src/mls/keyschedule/secretTree.js";
import type { SecretTreeVector } from "../browser/vector-checks.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

/** None: every case passes with every provider. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<SecretTreeVector>("secret-tree.json", PROVIDERS, async (v, cs) => {
  const sd = v.sender_data;
  const { key, nonce } = await senderDataKeyNonce(cs, hex(sd.sender_data_secret), hex(sd.ciphertext));
  expect(bytesToHex(key)).toBe(sd.key);
  expect(bytesToHex(nonce)).toBe(sd.nonce);

  let tree = SecretTree.create(cs, v.leaves.length, hex(v.encryption_secret));
  for (const [leaf, gens] of v.leaves.entries()) {
    for (const [kind, contentType] of [
      ["handshake", ContentTypes.commit],
      ["application", ContentTypes.application],
    ] as const) {
      for (const g of gens) {
        const staged = await tree.keyAndNonce(leaf, contentType, g.generation);
        expect(staged.generation).toBe(g.generation);
        expect(bytesToHex(staged.key)).toBe(g[`${kind}_key`]);
        expect(bytesToHex(staged.nonce)).toBe(g[`${kind}_nonce`]);
        tree = tree.merge(staged);
      }
    }
  }
});
