/**
 * Messages of a group (RFC 9420 §6): application messages sent and received as PrivateMessage
 * (§6.3, keys from the secret tree of §9), and every incoming handshake message: proposals and
 * commits as PublicMessage (§6.2) or PrivateMessage, from members, from external senders
 * (§12.1.8.1: ONE external_senders extension holding a vector, indexed by `sender_index`), from
 * a new member proposing its own Add, and external commits (§12.4.3.2).
 *
 * Late application messages of the last `MAX_PAST_EPOCHS` epochs decrypt with the receiver
 * data kept for them (§9.2). Handshake messages are accepted for the current epoch only.
 */
import { ErrorCode } from "../../errors.js";
import type { AuthenticationService } from "../credential/authentication.js";
import { proposalRef, type AuthenticatedContent } from "../framing/authenticatedContent.js";
import { openPrivate, protectPrivate } from "../framing/private.js";
import { unprotectPublic } from "../framing/public.js";
import {
  ContentTypes,
  ProposalTypes,
  SenderTypes,
  WireFormats,
  type FramedContent,
  type PrivateMessage,
  type Proposal,
  type PublicMessage,
  type Sender,
} from "../framing/types.js";
import type { LeafNode } from "../keypackage/types.js";
import type { GroupContext } from "../keyschedule/types.js";
import type { SecretTree, StagedKey } from "../keyschedule/secretTree.js";
import { getLeaf, leafCount, nextLeafIndex } from "../tree/tree.js";
import { validateLeafNode, type GroupParams } from "../tree/validate.js";
import { checkKeyPackage, type PskLookup } from "./applyProposals.js";
import { decodeAs, fail } from "../validation/errors.js";
import { readExternalSenders } from "./extensions.js";
import { decodeMlsMessage, encodeMlsMessage } from "./mlsMessage.js";
import { processCommit } from "./processCommit.js";
import { checkSenderMaySend } from "../validation/proposalList.js";
import { leavesOf, type GroupState } from "./state.js";

const M = ErrorCode.InvalidMessage;

/** What checking received messages needs besides the state. */
export interface ReceiveOptions {
  /** Session clock, seconds since the Unix epoch (§7.3 lifetimes). */
  readonly now: bigint;
  readonly authenticationService: AuthenticationService;
  readonly psk?: PskLookup;
}

/** The result of processing one incoming message. */
export type Received =
  | {
      readonly kind: "application";
      readonly state: GroupState;
      readonly data: Uint8Array;
      readonly sender: Sender;
      /** The sender's leaf in the epoch the message was sent in. */
      readonly senderLeaf: LeafNode | undefined;
      readonly epoch: bigint;
    }
  | {
      readonly kind: "proposal";
      readonly state: GroupState;
      readonly sender: Sender;
      readonly senderLeaf: LeafNode | undefined;
    }
  | {
      readonly kind: "commit";
      readonly state: GroupState;
      readonly sender: Sender;
      /** The committer's leaf in the new tree (for an external commit, the joiner's new leaf). */
      readonly senderLeaf: LeafNode | undefined;
      readonly senderLeafIndex: number | undefined;
      /** True when the commit removed us (the state is then inactive). */
      readonly removedUs: boolean;
    };

/** §6.3: our application data as an MLSMessage(PrivateMessage); the state keeps the secret tree that consumed the key. */
export async function encryptApplication(
  state: GroupState,
  data: Uint8Array,
  authenticatedData: Uint8Array = new Uint8Array(0),
): Promise<{ readonly state: GroupState; readonly message: Uint8Array }> {
  // §12.4.2: a removed member sends nothing.
  if (!state.active) fail(M, "§12.4.2 inactive", "we are no longer a member of this group");
  const content: FramedContent = {
    groupId: state.context.groupId,
    epoch: state.context.epoch,
    sender: { senderType: SenderTypes.member, leafIndex: state.ownLeaf },
    authenticatedData,
    contentType: ContentTypes.application,
    applicationData: data,
  };
  const { message, secretTree } = await protectPrivate(state.cs, {
    content,
    signKey: state.signaturePrivateKey,
    groupContext: state.context,
    senderDataSecret: state.keys.senderDataSecret,
    secretTree: state.secretTree,
  });
  return {
    state: { ...state, secretTree },
    message: encodeMlsMessage({ wireFormat: WireFormats.mls_private_message, privateMessage: message }),
  };
}

/** The leaf at `leafIndex` of a list of leaves, else the rule error for a blank sender. */
function memberKey(leaves: readonly (LeafNode | undefined)[], leafIndex: number): LeafNode {
  const leaf = leaves[leafIndex];
  // §6.1: a member sender occupies a non-blank leaf.
  if (leaf === undefined) fail(M, "§6 sender_leaf", `the sender's leaf ${leafIndex} is blank`, { leafIndex });
  return leaf;
}

/** §6.1: the signature key of a handshake content's sender in the current epoch. */
function signatureKeyOf(state: GroupState, content: FramedContent): Uint8Array {
  const s = content.sender;
  switch (s.senderType) {
    case SenderTypes.member: {
      const leaf = s.leafIndex < leafCount(state.tree) ? getLeaf(state.tree, s.leafIndex) : undefined;
      if (leaf === undefined)
        fail(M, "§6 sender_leaf", `the sender's leaf ${s.leafIndex} is blank`, { leafIndex: s.leafIndex });
      return leaf.signatureKey;
    }
    case SenderTypes.external: {
      // §12.1.8.1: sender_index into the ONE external_senders extension's vector.
      const senders = decodeAs(M, "the group's external_senders extension", () =>
        readExternalSenders(state.context.extensions),
      );
      const sender = senders[s.senderIndex];
      if (sender === undefined)
        fail(
          M,
          "§12.1.8.1 sender_index",
          `no external sender ${s.senderIndex} (${senders.length} in the group)`,
        );
      return sender.signatureKey;
    }
    case SenderTypes.new_member_proposal:
      // §12.1.8: a new member signs its own Add with its key package's key.
      if (
        content.contentType !== ContentTypes.proposal ||
        content.proposal.proposalType !== ProposalTypes.add
      )
        fail(M, "§12.1.8 new_member_proposal", "a new member's proposal is not an Add");
      return content.proposal.keyPackage.leafNode.signatureKey;
    case SenderTypes.new_member_commit:
      // §12.4.3.2: an external commit is signed with the key of its path's leaf.
      if (content.contentType !== ContentTypes.commit || content.commit.path === undefined)
        fail(ErrorCode.InvalidCommit, "§12.4.3.2 path", "an external commit without UpdatePath");
      return content.commit.path.leafNode.signatureKey;
  }
}

/** The sender's leaf node in the current tree, for members. */
function senderLeafOf(state: GroupState, sender: Sender): LeafNode | undefined {
  return sender.senderType === SenderTypes.member && sender.leafIndex < leafCount(state.tree)
    ? getLeaf(state.tree, sender.leafIndex)
    : undefined;
}

/**
 * §12.1.1 / §12.1.2: the leaf a received Add or Update brings is checked when it arrives (and
 * again, against the tree of the time, when a commit applies it): the key package (§10.1) and
 * the leaf (§7.3, its credential through the authentication service).
 */
async function checkProposedLeaf(
  state: GroupState,
  proposal: Proposal,
  sender: Sender,
  options: ReceiveOptions,
): Promise<void> {
  const g: GroupParams = {
    cs: state.cs,
    ciphersuite: state.context.ciphersuite,
    groupId: state.context.groupId,
    extensions: state.context.extensions,
    authenticationService: options.authenticationService,
    now: options.now,
    code: M,
  };
  if (proposal.proposalType === ProposalTypes.add) {
    await checkKeyPackage(
      proposal.keyPackage,
      { cs: state.cs, context: state.context, now: options.now, code: M },
      0,
    );
    await validateLeafNode(
      proposal.keyPackage.leafNode,
      "key_package",
      nextLeafIndex(state.tree),
      state.tree,
      g,
    );
  } else if (proposal.proposalType === ProposalTypes.update && sender.senderType === SenderTypes.member) {
    await validateLeafNode(proposal.leafNode, "update", sender.leafIndex, state.tree, g);
  }
}

/** §12.1: a received proposal, checked and stored under its ProposalRef (§5.2) for the next commit. */
async function storeProposal(
  state: GroupState,
  ac: AuthenticatedContent,
  options: ReceiveOptions,
): Promise<Received> {
  const content = ac.content;
  if (content.contentType !== ContentTypes.proposal) throw new TypeError("not a proposal");
  const sender = content.sender;
  // §12.1.6: an ExternalInit is never sent as a standalone proposal.
  if (content.proposal.proposalType === ProposalTypes.external_init)
    fail(M, "§12.1.6 external_init_sender", "an ExternalInit sent as a proposal");
  // §12.1.8: what each sender type may propose (an Update only from a member, …).
  checkSenderMaySend({ proposal: content.proposal, sender, ref: new Uint8Array(0) }, M, 0);
  if (content.proposal.proposalType === ProposalTypes.update && sender.senderType !== SenderTypes.member)
    fail(M, "§12.1.2 update_sender", "an Update from a non-member");
  await checkProposedLeaf(state, content.proposal, sender, options);
  const ref = await proposalRef(state.cs, ac);
  const next: GroupState = {
    ...state,
    pending: [...state.pending, { ref, sender, proposal: content.proposal }],
  };
  return { kind: "proposal", state: next, sender, senderLeaf: senderLeafOf(state, sender) };
}

async function handshake(
  state: GroupState,
  ac: AuthenticatedContent,
  options: ReceiveOptions,
): Promise<Received> {
  const content = ac.content;
  // §12.4.2: a removed member processes no more handshake messages.
  if (!state.active) fail(M, "§12.4.2 inactive", "we are no longer a member of this group");
  if (content.contentType === ContentTypes.proposal) return storeProposal(state, ac, options);
  if (content.contentType !== ContentTypes.commit) throw new TypeError("not a handshake message");
  const senderLeaf = senderLeafOf(state, content.sender);
  const r = await processCommit(state, ac, options);
  return {
    kind: "commit",
    state: r.state,
    sender: content.sender,
    senderLeaf: r.committerLeafNode ?? senderLeaf,
    senderLeafIndex:
      r.committerLeaf >= 0
        ? r.committerLeaf
        : content.sender.senderType === SenderTypes.member
          ? content.sender.leafIndex
          : undefined,
    removedUs: r.removedUs,
  };
}

async function receivePublic(
  state: GroupState,
  msg: PublicMessage,
  options: ReceiveOptions,
): Promise<Received> {
  const ac = await unprotectPublic(state.cs, msg, {
    groupContext: state.context,
    membershipKey: state.keys.membershipKey,
    signatureKey: (content) => signatureKeyOf(state, content),
  });
  return handshake(state, ac, options);
}

/** The receiver data of the epoch a PrivateMessage was sent in: current, or a kept past one (§9.2). */
function epochOf(
  state: GroupState,
  msg: PrivateMessage,
): {
  context: GroupContext;
  senderDataSecret: Uint8Array;
  secretTree: SecretTree;
  leaves: readonly (LeafNode | undefined)[];
} {
  if (msg.epoch === state.context.epoch)
    return {
      context: state.context,
      senderDataSecret: state.keys.senderDataSecret,
      secretTree: state.secretTree,
      leaves: leavesOf(state.tree),
    };
  const past = state.pastEpochs.find((p) => p.context.epoch === msg.epoch);
  // §6: only application messages of a kept past epoch are accepted late; everything else is for the current epoch.
  if (past === undefined || msg.contentType !== ContentTypes.application)
    fail(
      M,
      "§6 wrong_epoch",
      `the message is for epoch ${msg.epoch}, the group is at ${state.context.epoch}`,
    );
  return past;
}

/**
 * §9.2: `state` with the ratchet key of a message it accepted consumed: `from` (the secret tree
 * the key was staged from, still live) is replaced by `from.merge(staged)` where the state holds
 * it — the current epoch's tree, or a past epoch's (a late application message, or the epoch a
 * PrivateMessage commit just ended).
 */
function consumeKey(state: GroupState, from: SecretTree, staged: StagedKey): GroupState {
  const held = state.secretTree === from || state.pastEpochs.some((p) => p.secretTree === from);
  if (!held) throw new TypeError("the state does not hold the secret tree the key was staged from");
  const merged = from.merge(staged);
  if (state.secretTree === from) return { ...state, secretTree: merged };
  return {
    ...state,
    pastEpochs: state.pastEpochs.map((p) => (p.secretTree === from ? { ...p, secretTree: merged } : p)),
  };
}

/**
 * §6.3 a received PrivateMessage: decrypted and verified with its key staged; the key is
 * consumed (merged) only once the whole message was accepted — for a proposal or commit, once
 * the handshake processing succeeded — so a rejected message leaves `state` as it was.
 */
async function receivePrivate(
  state: GroupState,
  msg: PrivateMessage,
  options: ReceiveOptions,
): Promise<Received> {
  const e = epochOf(state, msg);
  const opened = await openPrivate(state.cs, msg, {
    groupContext: e.context,
    senderDataSecret: e.senderDataSecret,
    secretTree: e.secretTree,
    signatureKey: (content) => {
      const s = content.sender;
      if (s.senderType !== SenderTypes.member)
        fail(M, "§6.3 sender_type", "a PrivateMessage from a non-member");
      return memberKey(e.leaves, s.leafIndex).signatureKey;
    },
  });
  const content = opened.content.content;
  if (content.contentType === ContentTypes.application) {
    const sender = content.sender;
    const senderLeaf = sender.senderType === SenderTypes.member ? e.leaves[sender.leafIndex] : undefined;
    return {
      kind: "application",
      state: consumeKey(state, e.secretTree, opened.staged),
      data: content.applicationData,
      sender,
      senderLeaf,
      epoch: msg.epoch,
    };
  }
  // §6: a handshake message is for the current epoch (epochOf), whose tree the result still holds.
  const r = await handshake(state, opened.content, options);
  return { ...r, state: consumeKey(r.state, e.secretTree, opened.staged) };
}

/**
 * Processes one incoming MLSMessage (PublicMessage or PrivateMessage). Returns the new state;
 * `state` itself is never changed (a rejected message consumes no key and stores nothing).
 */
export async function receiveMessage(
  state: GroupState,
  bytes: Uint8Array,
  options: ReceiveOptions,
): Promise<Received> {
  const m = decodeMlsMessage(bytes, M);
  if (m.wireFormat === WireFormats.mls_public_message) return receivePublic(state, m.publicMessage, options);
  if (m.wireFormat === WireFormats.mls_private_message)
    return receivePrivate(state, m.privateMessage, options);
  return fail(
    M,
    "§6 wire_format",
    `expected a PublicMessage or PrivateMessage, got wire format ${m.wireFormat}`,
  );
}
