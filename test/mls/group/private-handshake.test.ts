/**
 * A proposal or commit received as a PrivateMessage (RFC 9420 §6.3) and then rejected by the
 * handshake rules consumes no ratchet key (§9.2: stage, then merge): the receiver's state is
 * untouched (still usable, same encoding) and the sender's next valid message of the same
 * generation is accepted.
 */
import { describe, expect, it } from "vitest";
import { MlsRuleError } from "../../../src/errors.js";
import { protectPrivate } from "../../../src/mls/framing/private.js";
import {
  ContentTypes,
  ProposalOrRefTypes,
  ProposalTypes,
  SenderTypes,
  WireFormats,
  type FramedContent,
  type FramedContentBody,
} from "../../../src/mls/framing/types.js";
import { encodeMlsMessage } from "../../../src/mls/group/mlsMessage.js";
import { isIntact, type GroupState } from "../../../src/mls/group/state.js";
import { decodeGroupState, encodeGroupState } from "../../../src/mls/group/stateEncoding.js";
import { commit, join, keyPackage, member, newGroup, receive } from "./helpers.js";

/** `body` from `state`'s own leaf as an MLSMessage(PrivateMessage); `state` itself is left usable. */
async function sendPrivate(
  state: GroupState,
  body: FramedContentBody,
  confirmationTag?: Uint8Array,
): Promise<Uint8Array> {
  // protectPrivate consumes a key of the tree it is given: work on a copy of the state
  const copy = decodeGroupState(encodeGroupState(state), state.cs, state.context.ciphersuite);
  const content = {
    groupId: copy.context.groupId,
    epoch: copy.context.epoch,
    sender: { senderType: SenderTypes.member, leafIndex: copy.ownLeaf },
    authenticatedData: new Uint8Array(0),
    ...body,
  } as FramedContent;
  const { message } = await protectPrivate(copy.cs, {
    content,
    signKey: copy.signaturePrivateKey,
    groupContext: copy.context,
    senderDataSecret: copy.keys.senderDataSecret,
    secretTree: copy.secretTree,
    ...(confirmationTag === undefined ? {} : { confirmationTag }),
  });
  return encodeMlsMessage({ wireFormat: WireFormats.mls_private_message, privateMessage: message });
}

async function rejection(p: Promise<unknown>): Promise<MlsRuleError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MlsRuleError);
  return e as MlsRuleError;
}

describe("a rejected PrivateMessage handshake message consumes no key (§9.2)", () => {
  it("a proposal and a commit rejected after decryption; the next valid one of the same generation is accepted", async () => {
    const alice = await member("alice");
    const bob = await member("bob");
    const kb = await keyPackage(bob);
    const add = await commit(await newGroup(alice), { adds: [{ keyPackage: kb.keyPackage }] });
    const a = add.state;
    let b = await join(bob, kb, add.welcome as Uint8Array);
    const carol = (await keyPackage(await member("carol"))).keyPackage;
    const addCarol = { proposalType: ProposalTypes.add, keyPackage: carol } as const;

    // generation 0 of alice's handshake ratchet, every time: only one message may consume it
    const before = encodeGroupState(b);
    const externalInit = await sendPrivate(a, {
      contentType: ContentTypes.proposal,
      proposal: { proposalType: ProposalTypes.external_init, kemOutput: new Uint8Array(32) },
    });
    expect((await rejection(receive(b, externalInit))).rule).toBe("§12.1.6 external_init_sender");
    expect(isIntact(b)).toBe(true);
    expect(encodeGroupState(b)).toEqual(before);

    // an Add-only commit (no path needed) whose confirmation tag is wrong: rejected at the very end
    const badCommit = await sendPrivate(
      a,
      {
        contentType: ContentTypes.commit,
        commit: { proposals: [{ type: ProposalOrRefTypes.proposal, proposal: addCarol }], path: undefined },
      },
      new Uint8Array(a.cs.kdf.size).fill(1),
    );
    expect((await rejection(receive(b, badCommit))).rule).toBe("§12.4.2 confirmation_tag");
    expect(isIntact(b)).toBe(true);
    expect(encodeGroupState(b)).toEqual(before);

    // the valid proposal of that same generation is accepted, and its key is then consumed
    const valid = await sendPrivate(a, { contentType: ContentTypes.proposal, proposal: addCarol });
    const r = await receive(b, valid);
    expect(r.kind).toBe("proposal");
    b = r.state;
    expect(b.pending).toHaveLength(1);
    expect((await rejection(receive(b, valid))).rule).toBe("§9.2 generation_reused");
  });
});
