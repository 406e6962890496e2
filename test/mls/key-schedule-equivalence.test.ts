/**
 * src/mls/keySchedule.ts computes exactly what ts-mls 1.6.4's key schedule and secret tree
 * functions compute (same values, same shapes), for every hash of the supported suites.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { GroupContext, Kdf } from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { expandWithLabel as tsExpandWithLabel } from "ts-mls/crypto/kdf.js";
import * as ts from "ts-mls/keySchedule.js";
import { createSecretTree as tsCreateSecretTree } from "ts-mls/secretTree.js";
import { nodeCryptoProvider } from "../../src/mls/crypto/node.js";
import {
  createSecretTree,
  deriveKeySchedule,
  expandWithLabel,
  initializeEpoch,
  initializeKeySchedule,
} from "../../src/mls/keySchedule.js";

const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

describe("key schedule equivalence with ts-mls", () => {
  // node:crypto's Kdf has a synchronous Expand (the fast path); without it, the async path
  for (const [id, path] of ([1, 5, 7] as CiphersuiteId[]).flatMap((id) =>
    (["sync", "async"] as const).map((p) => [id, p] as const),
  )) {
    it(`suite ${id}, ${path} Expand`, async () => {
      const impl = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(id));
      expect("expandSync" in impl.kdf).toBe(true);
      const kdf: Kdf =
        path === "sync"
          ? impl.kdf
          : { extract: impl.kdf.extract, expand: impl.kdf.expand, size: impl.kdf.size };
      const cs = { ...impl, kdf };
      const n = cs.kdf.size;
      const gc: GroupContext = {
        version: "mls10",
        cipherSuite: cs.name,
        groupId: rnd(70),
        epoch: 5n,
        treeHash: rnd(n),
        confirmedTranscriptHash: rnd(n),
        extensions: [{ extensionType: "required_capabilities", extensionData: rnd(9) }],
      };
      for (const [label, ctx, len] of [
        ["joiner", rnd(200), n],
        ["key", new Uint8Array(0), 16],
        ["x".repeat(40), rnd(20000), 12],
      ] as const) {
        const s = rnd(n);
        expect(await expandWithLabel(s, label, ctx, len, cs.kdf)).toEqual(
          await tsExpandWithLabel(s, label, ctx, len, cs.kdf),
        );
      }
      const epochSecret = rnd(n);
      expect(await initializeKeySchedule(epochSecret, cs.kdf)).toEqual(
        await ts.initializeKeySchedule(epochSecret, cs.kdf),
      );
      const [joiner, psk] = [rnd(n), rnd(n)];
      expect(await deriveKeySchedule(joiner, psk, gc, cs.kdf)).toEqual(
        await ts.deriveKeySchedule(joiner, psk, gc, cs.kdf),
      );
      const [init, commit] = [rnd(n), rnd(n)];
      expect(await initializeEpoch(init, commit, gc, psk, cs.kdf)).toEqual(
        await ts.initializeEpoch(init, commit, gc, psk, cs.kdf),
      );
      for (const leaves of [1, 2, 3, 4, 5, 8, 9, 100]) {
        const enc = rnd(n);
        const ours = await createSecretTree(leaves, Uint8Array.from(enc), cs.kdf);
        expect(ours).toEqual(await tsCreateSecretTree(leaves, Uint8Array.from(enc), cs.kdf));
      }
    });
  }
});
