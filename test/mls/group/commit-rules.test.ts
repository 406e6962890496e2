/**
 * One negative test per rule a member checks on a commit it processes (RFC 9420 §12.2 proposal
 * lists, §12.1 single proposals, §12.4 path, §12.4.2 references and confirmation tag,
 * §12.4.3.2 external commits): a valid group (alice, bob, carol), then a commit from alice that
 * breaks one rule, crafted and properly signed and MACed, processed by bob. Each must fail with
 * InvalidCommit and that rule, and leave bob's state as it was.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.js";
import { decodeExact } from "../../../src/mls/codec/index.js";
import { readMlsMessage } from "../../../src/mls/group/codec.js";
import { encodeMlsMessage } from "../../../src/mls/group/mlsMessage.js";
import { checkProposalList, type ResolvedProposal } from "../../../src/mls/validation/proposalList.js";
import type { GroupState } from "../../../src/mls/group/state.js";
import { encodeGroupState } from "../../../src/mls/group/stateEncoding.js";
import { protectPublic, toPublicMessage } from "../../../src/mls/framing/public.js";
import {
  ContentTypes,
  ProposalOrRefTypes,
  ProposalTypes,
  SenderTypes,
  WireFormats,
  type FramedContent,
  type Proposal,
  type ProposalOrRef,
  type Sender,
} from "../../../src/mls/framing/types.js";
import type { KeyPackage } from "../../../src/mls/keypackage/types.js";
import {
  commit,
  join,
  keyPackage,
  member,
  newGroup,
  receive,
  type TestKeyPackage,
  type TestMember,
} from "./helpers.js";

let alice: TestMember;
let bob: TestMember;
let carol: TestMember;
let a: GroupState;
let b: GroupState;
let spare: TestKeyPackage;

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([member("alice"), member("bob"), member("carol")]);
  const [kb, kc] = await Promise.all([keyPackage(bob), keyPackage(carol)]);
  spare = await keyPackage(await member("dave"));
  const add = await commit(await newGroup(alice), {
    adds: [{ keyPackage: kb.keyPackage }, { keyPackage: kc.keyPackage }],
  });
  a = add.state;
  b = await join(bob, kb, add.welcome as Uint8Array);
});

const byValue = (proposal: Proposal): ProposalOrRef => ({ type: ProposalOrRefTypes.proposal, proposal });
const remove = (removed: number): Proposal => ({ proposalType: ProposalTypes.remove, removed });
const add = (keyPackage: KeyPackage): Proposal => ({ proposalType: ProposalTypes.add, keyPackage });
const externalPsk = (id: number, nonce = new Uint8Array(32)): Proposal => ({
  proposalType: ProposalTypes.psk,
  psk: { pskType: 1, pskId: Uint8Array.of(id), pskNonce: nonce },
});
const gce = (): Proposal => ({ proposalType: ProposalTypes.group_context_extensions, extensions: [] });

/** A commit from alice's state with `proposals` (and no path unless given), signed and MACed. */
async function crafted(
  proposals: ProposalOrRef[],
  sender: Sender = { senderType: SenderTypes.member, leafIndex: 0 },
) {
  const content: FramedContent = {
    groupId: a.context.groupId,
    epoch: a.context.epoch,
    sender,
    authenticatedData: new Uint8Array(0),
    contentType: ContentTypes.commit,
    commit: { proposals, path: undefined },
  };
  const pm = await protectPublic(a.cs, {
    content,
    signKey: alice.signaturePrivateKey,
    groupContext: a.context,
    membershipKey: a.keys.membershipKey,
    confirmationTag: new Uint8Array(32),
  });
  return encodeMlsMessage({ wireFormat: WireFormats.mls_public_message, publicMessage: pm });
}

/** Bob processes `message`: it must fail with InvalidCommit and `rule`, bob's state unchanged. */
async function rejects(
  message: Uint8Array,
  rule: string,
  code: string = ErrorCode.InvalidCommit,
): Promise<void> {
  const before = encodeGroupState(b);
  await expect(receive(b, message)).rejects.toMatchObject({ code, rule });
  expect(encodeGroupState(b)).toEqual(before);
}

describe("§12.2 proposal list rules (bob processes alice's commit)", () => {
  it("a Remove of the committer", async () =>
    rejects(await crafted([byValue(remove(0))]), "§12.2 committer_removed"));
  it("two Removes of the same leaf", async () =>
    rejects(await crafted([byValue(remove(2)), byValue(remove(2))]), "§12.2 duplicate_update_remove"));
  it("two Adds of the same client", async () =>
    rejects(
      await crafted([byValue(add(spare.keyPackage)), byValue(add(spare.keyPackage))]),
      "§12.2 duplicate_add",
    ));
  it("two Adds with the same encryption key", async () => {
    const other = (await keyPackage(await member("erin"))).keyPackage;
    const clash: KeyPackage = {
      ...other,
      leafNode: { ...other.leafNode, encryptionKey: spare.keyPackage.leafNode.encryptionKey },
    };
    await rejects(
      await crafted([byValue(add(spare.keyPackage)), byValue(add(clash))]),
      "§7.3 duplicate_encryption_key",
    );
  });
  it("the same PSK twice", async () =>
    rejects(await crafted([byValue(externalPsk(1)), byValue(externalPsk(1))]), "§12.2 duplicate_psk"));
  it("two GroupContextExtensions", async () =>
    rejects(await crafted([byValue(gce()), byValue(gce())]), "§12.2 multiple_group_context_extensions"));
  it("a ReInit with another proposal", async () => {
    const reinit: Proposal = {
      proposalType: ProposalTypes.reinit,
      groupId: Uint8Array.of(9),
      version: 1,
      ciphersuite: 1,
      extensions: [],
    };
    await rejects(await crafted([byValue(reinit), byValue(remove(2))]), "§12.2 reinit_not_alone");
  });
  it("an ExternalInit in a member's commit", async () =>
    rejects(
      await crafted([byValue({ proposalType: ProposalTypes.external_init, kemOutput: new Uint8Array(32) })]),
      "§12.2 external_init",
    ));
  it("the committer's own Update (by reference)", () => {
    const update: ResolvedProposal = {
      proposal: { proposalType: ProposalTypes.update, leafNode: spare.keyPackage.leafNode },
      sender: { senderType: SenderTypes.member, leafIndex: 0 },
      ref: new Uint8Array(32),
    };
    expect(() =>
      checkProposalList([update], { senderType: SenderTypes.member, leafIndex: 0 }, ErrorCode.InvalidCommit),
    ).toThrow(expect.objectContaining({ rule: "§12.2 committer_update" }));
  });
  it("an Update from an external sender", () => {
    const update: ResolvedProposal = {
      proposal: { proposalType: ProposalTypes.update, leafNode: spare.keyPackage.leafNode },
      sender: { senderType: SenderTypes.external, senderIndex: 0 },
      ref: new Uint8Array(32),
    };
    expect(() =>
      checkProposalList([update], { senderType: SenderTypes.member, leafIndex: 0 }, ErrorCode.InvalidCommit),
    ).toThrow(expect.objectContaining({ rule: "§12.1.8 external_sender_proposal" }));
  });
});

describe("§12.4.3.2 external commit shape", () => {
  const joiner: Sender = { senderType: SenderTypes.new_member_commit };
  const init: ResolvedProposal = {
    proposal: { proposalType: ProposalTypes.external_init, kemOutput: new Uint8Array(32) },
    sender: joiner,
    ref: undefined,
  };
  const check = (list: ResolvedProposal[]) => () => checkProposalList(list, joiner, ErrorCode.InvalidCommit);
  it("no ExternalInit", () =>
    expect(check([{ ...init, proposal: remove(1) }])).toThrow(
      expect.objectContaining({ rule: "§12.4.3.2 external_init" }),
    ));
  it("two Removes", () =>
    expect(check([init, { ...init, proposal: remove(1) }, { ...init, proposal: remove(2) }])).toThrow(
      expect.objectContaining({ rule: "§12.4.3.2 remove" }),
    ));
  it("an Add", () =>
    expect(check([init, { ...init, proposal: add(spare.keyPackage) }])).toThrow(
      expect.objectContaining({ rule: "§12.4.3.2 proposal_type" }),
    ));
  it("a proposal by reference", () =>
    expect(check([init, { ...init, proposal: remove(1), ref: new Uint8Array(32) }])).toThrow(
      expect.objectContaining({ rule: "§12.4.3.2 by_value" }),
    ));
});

describe("§12.1 single proposals, §12.4 path, §12.4.2 processing", () => {
  it("a Remove of a blank leaf", async () =>
    rejects(await crafted([byValue(remove(5))]), "§12.1.3 removed_leaf"));
  it("an Add whose key package signature is bad", async () => {
    const kp = spare.keyPackage;
    const bad: KeyPackage = { ...kp, signature: kp.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    await rejects(await crafted([byValue(add(bad))]), "§10.1 keypackage_signature");
  });
  it("an Add of a client already in the group (same signature key)", async () => {
    const kp = await keyPackage(carol);
    await rejects(await crafted([byValue(add(kp.keyPackage))]), "§7.3 duplicate_signature_key");
  });
  it("an Add of an expired key package", async () => {
    const old = await keyPackage(await member("frank"), { notBefore: 1_000_000, notAfter: 2_000_000 });
    await rejects(await crafted([byValue(add(old.keyPackage))]), "§7.3 lifetime");
  });
  it("an unknown external PSK", async () =>
    rejects(await crafted([byValue(externalPsk(7))]), "§8.4 psk_unknown"));
  it("a PSK nonce of the wrong size", async () =>
    rejects(await crafted([byValue(externalPsk(7, new Uint8Array(5)))]), "§8.4 psk_nonce"));
  it("a Remove without UpdatePath", async () =>
    rejects(await crafted([byValue(remove(2))]), "§12.4 path_required"));
  it("an empty commit without UpdatePath", async () => rejects(await crafted([]), "§12.4 path_required"));
  it("a reference to a proposal never received", async () =>
    rejects(
      await crafted([{ type: ProposalOrRefTypes.reference, reference: new Uint8Array(32) }]),
      "§12.4.2 unknown_proposal_ref",
    ));
  it("a bad confirmation tag", async () => {
    const good = await commit(a, { adds: [{ keyPackage: spare.keyPackage }] });
    const m = decodeExact(good.commit, readMlsMessage);
    if (m.wireFormat !== WireFormats.mls_public_message) throw new Error("expected a PublicMessage");
    const tag = (m.publicMessage.auth.confirmationTag as Uint8Array).map((x, i) => (i === 0 ? x ^ 1 : x));
    const pm = await toPublicMessage(
      a.cs,
      {
        wireFormat: WireFormats.mls_public_message,
        content: m.publicMessage.content,
        auth: { ...m.publicMessage.auth, confirmationTag: tag },
      },
      a.context,
      a.keys.membershipKey,
    );
    await rejects(
      encodeMlsMessage({ wireFormat: WireFormats.mls_public_message, publicMessage: pm }),
      "§12.4.2 confirmation_tag",
    );
    // the untouched commit is accepted
    expect((await receive(b, good.commit)).kind).toBe("commit");
  });
  it("a commit from our own leaf", async () => {
    const own = await commit(b, { adds: [{ keyPackage: spare.keyPackage }] });
    await rejects(own.commit, "§12.4.2 own_commit");
  });
  it("a bad membership tag", async () => {
    const good = decodeExact(await crafted([byValue(add(spare.keyPackage))]), readMlsMessage);
    if (good.wireFormat !== WireFormats.mls_public_message) throw new Error("expected a PublicMessage");
    const tag = (good.publicMessage.membershipTag as Uint8Array).map((x, i) => (i === 0 ? x ^ 1 : x));
    await rejects(
      encodeMlsMessage({
        wireFormat: WireFormats.mls_public_message,
        publicMessage: { ...good.publicMessage, membershipTag: tag },
      }),
      "§6.2 membership_tag",
      ErrorCode.InvalidMessage,
    );
  });
});
