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
} from "ts-mls";
import { encodeGroupStateWithoutTree } from "ts-mls/clientState.js";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { encodeRatchetTree } from "ts-mls/ratchetTree.js";
import { treeHashRoot as tsTreeHashRoot } from "ts-mls/treeHash.js";
import { nodeCryptoProvider } from "../../src/mls/crypto/node.js";
import { tsMlsKeyPackage } from "./fixtures/tsmls.js";
import { encodeStateWithoutTree, encodeTree, treeHashRoot } from "../../src/mls/fastEncode.js";

async function check(state: ClientState, cs: CiphersuiteImpl): Promise<void> {
  expect(encodeStateWithoutTree(state)).toEqual(encodeGroupStateWithoutTree(state));
  expect(encodeTree(state.ratchetTree)).toEqual(encodeRatchetTree(state.ratchetTree));
  expect(await treeHashRoot(state.ratchetTree, cs.hash)).toEqual(
    await tsTreeHashRoot(state.ratchetTree, cs.hash),
  );
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
    });
  }
});
