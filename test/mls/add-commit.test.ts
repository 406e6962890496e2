/**
 * `addCommit` (src/mls/group.ts) against ts-mls 1.6.4's `createCommit` for a commit of Add
 * proposals: with a deterministic signature scheme (Ed25519) the commit message is the same
 * bytes and the new state is the same value; the Welcome (HPKE is randomized) lets a ts-mls
 * client join with the same state as from ts-mls's own Welcome.
 */
import { describe, expect, it } from "vitest";
import {
  createCommit,
  createGroup,
  emptyPskIndex,
  encodeMlsMessage,
  decodeMlsMessage,
  joinGroup,
  type ClientState,
  type Proposal,
} from "ts-mls";
import { getCiphersuiteFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import { nodeCryptoProvider } from "../../src/mls/crypto/node.js";
import { tsMlsKeyPackage } from "./fixtures/tsmls.js";
import { addCommit } from "../../src/mls/group.js";

const withoutConfig = (s: ClientState): Omit<ClientState, "clientConfig"> => {
  const { clientConfig: _, ...rest } = s;
  return rest;
};

describe("addCommit = ts-mls createCommit for Add-only commits", () => {
  for (const id of [1, 3] as CiphersuiteId[]) {
    it(`suite ${id}`, async () => {
      const cs = await nodeCryptoProvider.getCiphersuiteImpl(getCiphersuiteFromId(id));
      const kp = (name: string) => tsMlsKeyPackage(name, cs);
      const [alice, bob, carol, dave] = await Promise.all([kp("a"), kp("b"), kp("c"), kp("d")]);
      const add = (k: typeof bob): Proposal => ({
        proposalType: "add",
        add: { keyPackage: k.publicPackage },
      });
      let state = await createGroup(
        new TextEncoder().encode("g"),
        alice.publicPackage,
        alice.privatePackage,
        [],
        cs,
      );
      for (const adds of [[bob], [carol, dave]]) {
        const proposals = adds.map(add);
        const theirs = await createCommit(
          { state, cipherSuite: cs, pskIndex: emptyPskIndex },
          { extraProposals: proposals, ratchetTreeExtension: true, wireAsPublicMessage: true },
        );
        const ours = await addCommit(state, proposals, cs, cs);
        expect(ours.commit).toEqual(encodeMlsMessage(theirs.commit));
        expect(withoutConfig(ours.newState)).toEqual(withoutConfig(theirs.newState));
        const w = decodeMlsMessage(ours.welcome, 0)?.[0];
        if (w?.wireformat !== "mls_welcome") throw new Error("no welcome");
        for (const [i, k] of adds.entries()) {
          const joined = await joinGroup(w.welcome, k.publicPackage, k.privatePackage, emptyPskIndex, cs);
          const viaTheirs = await joinGroup(
            theirs.welcome!,
            k.publicPackage,
            k.privatePackage,
            emptyPskIndex,
            cs,
          );
          expect(withoutConfig(joined)).toEqual(withoutConfig(viaTheirs));
          expect(w.welcome.secrets[i]?.newMember).toEqual(theirs.welcome?.secrets[i]?.newMember);
        }
        const gi = decodeMlsMessage(ours.groupInfo, 0)?.[0];
        expect(gi?.wireformat).toBe("mls_group_info");
        state = ours.newState;
      }
    });
  }
});
