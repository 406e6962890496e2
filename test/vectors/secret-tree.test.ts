/**
 * secret-tree.json (RFC 9420 Sections 6.3.2 and 9): sender-data key/nonce
 * and the per-leaf handshake/application ratchets.
 */
import { expect } from "vitest";
import { defaultKeyRetentionConfig } from "ts-mls/keyRetentionConfig.js";
import { createSecretTree, deriveKey, deriveNonce, ratchetUntil } from "ts-mls/secretTree.js";
import { expandSenderDataKey, expandSenderDataNonce } from "ts-mls/sender.js";
import { leafToNodeIndex, toLeafIndex } from "ts-mls/treemath.js";
import type { SecretTreeVector } from "../browser/vector-checks.js";
import { PROVIDERS, type SkippedVector, bytesToHex, hex, vectorTests } from "./helpers.js";

/** None: every case passes with both providers. */
export const SKIPPED_VECTORS: readonly SkippedVector[] = [];

vectorTests<SecretTreeVector>("secret-tree.json", PROVIDERS, async (v, cs) => {
  const sd = v.sender_data;
  expect(bytesToHex(await expandSenderDataKey(cs, hex(sd.sender_data_secret), hex(sd.ciphertext)))).toBe(
    sd.key,
  );
  expect(bytesToHex(await expandSenderDataNonce(cs, hex(sd.sender_data_secret), hex(sd.ciphertext)))).toBe(
    sd.nonce,
  );

  const tree = await createSecretTree(v.leaves.length, hex(v.encryption_secret), cs.kdf);
  for (const [i, gens] of v.leaves.entries()) {
    const node = tree[leafToNodeIndex(toLeafIndex(i))];
    if (node === undefined) throw new Error(`no secret tree node for leaf ${i}`);
    for (const kind of ["handshake", "application"] as const) {
      for (const g of gens) {
        const [r] = await ratchetUntil(node[kind], g.generation, defaultKeyRetentionConfig, cs.kdf);
        expect(r.generation).toBe(g.generation);
        expect(bytesToHex(await deriveKey(r.secret, r.generation, cs))).toBe(g[`${kind}_key`]);
        expect(bytesToHex(await deriveNonce(r.secret, r.generation, cs))).toBe(g[`${kind}_nonce`]);
      }
    }
  }
});
