/**
 * src/mls/fastEncode.ts against ts-mls 1.6.4's encoders: same bytes for ratchet trees, tree
 * hashes and group states (after create, adds, self-updates, removes, joins, received
 * proposals and application messages, i.e. with parent nodes, unmerged leaves, commit-source
 * leaves, historical epochs, unused generations and unapplied proposals).
 */
import { describe, expect, it } from "vitest";
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  createGroup,
  createProposal,
  emptyPskIndex,
  joinGroup,
  processMessage,
  type ClientState,
  type CiphersuiteImpl,
  type Hash,
  type RatchetTree,
} from "ts-mls";
import { encodeGroupStateWithoutTree } from "ts-mls/clientState.js";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { treeHashRoot as tsTreeHashRoot } from "ts-mls/treeHash.js";
import { nodeCryptoProvider } from "../../src/mls/crypto/node.js";
import { tsMlsKeyPackage } from "./fixtures/tsmls.js";
import { encodeStateWithoutTree, encodeTree, treeHashRoot } from "../../src/mls/fastEncode.js";

/** Trees checked so far: each is the `base` of every later tree hash (reuse must never mislead). */
const earlierTrees: RatchetTree[] = [];

async function check(state: ClientState, cs: CiphersuiteImpl): Promise<void> {
  expect(encodeStateWithoutTree(state)).toEqual(encodeGroupStateWithoutTree(state));
  expect(encodeTree(state.ratchetTree)).toEqual(encodeRatchetTree(state.ratchetTree));
  const expected = await tsTreeHashRoot(state.ratchetTree, cs.hash);
  // node:crypto's synchronous digest, without and with a base tree's subtree hashes…
  expect("digestSync" in cs.hash).toBe(true);
  expect(await treeHashRoot(state.ratchetTree, cs.hash)).toEqual(expected);
  for (const base of earlierTrees) expect(await treeHashRoot(state.ratchetTree, cs.hash, base)).toEqual(expected);
  // …and the asynchronous path of a provider without one (WebCrypto)
  const asyncHash: Hash = { digest: cs.hash.digest, mac: cs.hash.mac, verifyMac: cs.hash.verifyMac };
  expect(await treeHashRoot(state.ratchetTree, asyncHash)).toEqual(expected);
  earlierTrees.push(state.ratchetTree);
}

describe("fast encoders agree with ts-mls", () => {
  for (const id of [1, 7] as CiphersuiteId[]) {
    it(`suite ${id}`, async () => {
      const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(id));
      const kp = (name: string) => tsMlsKeyPackage(name, cs);
      const [alice, bob, carol, dave] = await Promise.all([kp("a"), kp("b"), kp("c"), kp("d")]);
      let a = await createGroup(
        new TextEncoder().encode("g"),
        alice.publicPackage,
        alice.privatePackage,
        [],
        cs,
      );
      await check(a, cs);
      const add = (k: typeof bob) => ({ proposalType: "add" as const, add: { keyPackage: k.publicPackage } });
      let r = await createCommit(
        { state: a, cipherSuite: cs, pskIndex: emptyPskIndex },
        { extraProposals: [add(bob), add(carol)], ratchetTreeExtension: true },
      );
      a = r.newState;
      await check(a, cs);
      let b = await joinGroup(r.welcome!, bob.publicPackage, bob.privatePackage, emptyPskIndex, cs);
      await check(b, cs);
      // self-update (UpdatePath: parent nodes, commit leaf), then an add (unmerged leaves)
      r = await createCommit({ state: b, cipherSuite: cs, pskIndex: emptyPskIndex }, {});
      b = r.newState;
      await check(b, cs);
      a = (await processMessage(r.commit as never, a, emptyPskIndex, acceptAll, cs)).newState;
      await check(a, cs);
      r = await createCommit(
        { state: a, cipherSuite: cs, pskIndex: emptyPskIndex },
        { extraProposals: [add(dave)], ratchetTreeExtension: true },
      );
      a = r.newState;
      await check(a, cs);
      expect(a.ratchetTree.some((n) => n?.nodeType === "parent" && n.parent.unmergedLeaves.length > 0)).toBe(
        true,
      );
      b = (await processMessage(r.commit as never, b, emptyPskIndex, acceptAll, cs)).newState;
      // a proposal kept unapplied, application messages (generations)
      const p = await createProposal(b, true, { proposalType: "remove", remove: { removed: 2 } }, cs);
      b = p.newState;
      await check(b, cs);
      a = (await processMessage(p.message as never, a, emptyPskIndex, acceptAll, cs)).newState;
      expect(Object.keys(a.unappliedProposals).length).toBe(1);
      await check(a, cs);
      r = await createCommit({ state: a, cipherSuite: cs, pskIndex: emptyPskIndex }, {});
      a = r.newState;
      b = (await processMessage(r.commit as never, b, emptyPskIndex, acceptAll, cs)).newState;
      await check(a, cs);
      for (let i = 0; i < 3; i++) {
        const m = await createApplicationMessage(a, new Uint8Array([i]), cs);
        a = m.newState;
        if (i !== 1)
          b = (
            await processMessage(
              { wireformat: "mls_private_message", privateMessage: m.privateMessage },
              b,
              emptyPskIndex,
              acceptAll,
              cs,
            )
          ).newState;
      }
      await check(a, cs);
      await check(b, cs);
      expect(b.historicalReceiverData.size).toBeGreaterThan(1);

      // An Add changes one leaf and its direct path: with the previous tree's subtree hashes,
      // only those nodes are hashed again (a new leaf in a new right half: that half and the root)
      let digests = 0;
      const sync = cs.hash as Hash & { digestSync(d: Uint8Array): Uint8Array };
      const counting = { ...sync, digestSync: (d: Uint8Array) => (digests++, sync.digestSync(d)) };
      const before = a.ratchetTree;
      await treeHashRoot(before, counting);
      expect(digests).toBe(before.length);
      const eve = await kp("e");
      r = await createCommit(
        { state: a, cipherSuite: cs, pskIndex: emptyPskIndex },
        { extraProposals: [add(eve)], ratchetTreeExtension: true },
      );
      const after = r.newState.ratchetTree;
      digests = 0;
      expect(await treeHashRoot(after, counting, before)).toEqual(await tsTreeHashRoot(after, cs.hash));
      expect(digests).toBeGreaterThan(0);
      expect(digests).toBeLessThan(after.length / 2);
    });
  }
});
