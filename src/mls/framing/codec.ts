/**
 * TLS codecs (RFC 9420 §2.1) of the message framing and what it carries:
 *
 * - §6 `Sender`, `FramedContent`; §6.1 `FramedContentTBS` (encoder only), `FramedContentAuthData`
 * - §6.2 `PublicMessage`; §6.3 `PrivateMessage`; §6.3.1 `PrivateMessageContent`; §6.3.2 `SenderData`
 * - §12.1 `Proposal` (add, update, remove, psk, reinit, external_init, group_context_extensions)
 * - §12.4 `ProposalOrRef`, `Commit`
 *
 * Selects whose tag has no case (sender type, content type, proposal type, ProposalOrRef type)
 * cannot be skipped, so an unknown value is refused ("§2.1 unknown enum value"). Fields whose
 * presence depends on another field (§6.1 confirmation_tag on the content type, §6.2
 * membership_tag on the sender type) are read by that field and checked on write (TypeError).
 * Decoding is syntax only; byte fields are views into the input.
 */
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import {
  readExtensions,
  readKeyPackage,
  readLeafNode,
  writeExtensions,
  writeKeyPackage,
  writeLeafNode,
} from "../keypackage/codec.js";
import { readPreSharedKeyId, writeGroupContext, writePreSharedKeyId } from "../keyschedule/codec.js";
import type { GroupContext } from "../keyschedule/types.js";
import { readUpdatePath, writeUpdatePath } from "../treekem/codec.js";
import {
  ContentTypes,
  ProposalOrRefTypes,
  ProposalTypes,
  SenderTypes,
  type Commit,
  type FramedContent,
  type FramedContentAuthData,
  type FramedContentBody,
  type PrivateMessage,
  type PrivateMessageContent,
  type Proposal,
  type ProposalOrRef,
  type PublicMessage,
  type Sender,
  type SenderData,
} from "./types.js";

const MLS10 = 1;

function unknown(what: string, value: number): DecodeError {
  return new DecodeError("§2.1 unknown enum value", `${what} ${value}`);
}

function unknownOnWrite(what: string, value: unknown): TypeError {
  return new TypeError(`unknown ${what} ${String(value)}`);
}

// ------------------------------------------------------------------------------------- sender

/** §6 Sender. */
export function writeSender(w: Writer, s: Sender): void {
  w.u8(s.senderType);
  switch (s.senderType) {
    case SenderTypes.member:
      w.u32(s.leafIndex);
      break;
    case SenderTypes.external:
      w.u32(s.senderIndex);
      break;
    case SenderTypes.new_member_proposal:
    case SenderTypes.new_member_commit:
      break;
    default:
      throw unknownOnWrite("sender type", (s as { senderType: unknown }).senderType);
  }
}

/** §6 Sender. */
export function readSender(r: Reader): Sender {
  const senderType = r.u8();
  switch (senderType) {
    case SenderTypes.member:
      return { senderType, leafIndex: r.u32() };
    case SenderTypes.external:
      return { senderType, senderIndex: r.u32() };
    case SenderTypes.new_member_proposal:
    case SenderTypes.new_member_commit:
      return { senderType };
    default:
      // §2.1: a SenderType with no case in the select cannot be skipped.
      throw unknown("sender type", senderType);
  }
}

// ----------------------------------------------------------------------------------- proposals

/** §12.1 the body of a Proposal (Add, Update, Remove, …) without its proposal_type. */
export function writeProposalBody(w: Writer, p: Proposal): void {
  switch (p.proposalType) {
    case ProposalTypes.add:
      writeKeyPackage(w, p.keyPackage);
      break;
    case ProposalTypes.update:
      writeLeafNode(w, p.leafNode);
      break;
    case ProposalTypes.remove:
      w.u32(p.removed);
      break;
    case ProposalTypes.psk:
      writePreSharedKeyId(w, p.psk);
      break;
    case ProposalTypes.reinit:
      w.vec(p.groupId).u16(p.version).u16(p.ciphersuite);
      writeExtensions(w, p.extensions);
      break;
    case ProposalTypes.external_init:
      w.vec(p.kemOutput);
      break;
    case ProposalTypes.group_context_extensions:
      writeExtensions(w, p.extensions);
      break;
    default:
      throw unknownOnWrite("proposal type", (p as { proposalType: unknown }).proposalType);
  }
}

/** §12.1 the body of a Proposal of type `proposalType` (Add, Update, Remove, …). */
export function readProposalBody(r: Reader, proposalType: number): Proposal {
  switch (proposalType) {
    case ProposalTypes.add:
      return { proposalType, keyPackage: readKeyPackage(r) };
    case ProposalTypes.update:
      return { proposalType, leafNode: readLeafNode(r) };
    case ProposalTypes.remove:
      return { proposalType, removed: r.u32() };
    case ProposalTypes.psk:
      return { proposalType, psk: readPreSharedKeyId(r) };
    case ProposalTypes.reinit: {
      const groupId = r.vec();
      const version = r.u16();
      const ciphersuite = r.u16();
      return { proposalType, groupId, version, ciphersuite, extensions: readExtensions(r) };
    }
    case ProposalTypes.external_init:
      return { proposalType, kemOutput: r.vec() };
    case ProposalTypes.group_context_extensions:
      return { proposalType, extensions: readExtensions(r) };
    default:
      // §2.1: a ProposalType with no case in the select has no length to skip it by.
      throw unknown("proposal type", proposalType);
  }
}

/** §12.1 Proposal. */
export function writeProposal(w: Writer, p: Proposal): void {
  w.u16(p.proposalType);
  writeProposalBody(w, p);
}

/** §12.1 Proposal (the seven types of RFC 9420). */
export function readProposal(r: Reader): Proposal {
  return readProposalBody(r, r.u16());
}

/** §12.4 ProposalOrRef. */
export function writeProposalOrRef(w: Writer, p: ProposalOrRef): void {
  w.u8(p.type);
  if (p.type === ProposalOrRefTypes.proposal) writeProposal(w, p.proposal);
  else if (p.type === ProposalOrRefTypes.reference) w.vec(p.reference);
  else throw unknownOnWrite("ProposalOrRef type", (p as { type: unknown }).type);
}

/** §12.4 ProposalOrRef. */
export function readProposalOrRef(r: Reader): ProposalOrRef {
  const type = r.u8();
  if (type === ProposalOrRefTypes.proposal) return { type, proposal: readProposal(r) };
  if (type === ProposalOrRefTypes.reference) return { type, reference: r.vec() };
  // §2.1: a ProposalOrRefType with no case in the select cannot be skipped.
  throw unknown("ProposalOrRef type", type);
}

/** §12.4 Commit. */
export function writeCommit(w: Writer, c: Commit): void {
  w.vecOf(c.proposals, writeProposalOrRef).optional(c.path, writeUpdatePath);
}

/** §12.4 Commit. */
export function readCommit(r: Reader): Commit {
  const proposals = r.vecOf(readProposalOrRef);
  return { proposals, path: r.optional(readUpdatePath) };
}

// ------------------------------------------------------------------------------ framed content

/** The content_type-selected body of FramedContent / PrivateMessageContent, without the type. */
function writeBody(w: Writer, b: FramedContentBody): void {
  switch (b.contentType) {
    case ContentTypes.application:
      w.vec(b.applicationData);
      break;
    case ContentTypes.proposal:
      writeProposal(w, b.proposal);
      break;
    case ContentTypes.commit:
      writeCommit(w, b.commit);
      break;
    default:
      throw unknownOnWrite("content type", (b as { contentType: unknown }).contentType);
  }
}

/** The body of FramedContent / PrivateMessageContent selected by `contentType`. */
export function readFramedContentBody(r: Reader, contentType: number): FramedContentBody {
  switch (contentType) {
    case ContentTypes.application:
      return { contentType, applicationData: r.vec() };
    case ContentTypes.proposal:
      return { contentType, proposal: readProposal(r) };
    case ContentTypes.commit:
      return { contentType, commit: readCommit(r) };
    default:
      // §2.1: a ContentType with no case in the select cannot be skipped.
      throw unknown("content type", contentType);
  }
}

/** §6 FramedContent. */
export function writeFramedContent(w: Writer, c: FramedContent): void {
  w.vec(c.groupId).u64(c.epoch);
  writeSender(w, c.sender);
  w.vec(c.authenticatedData).u8(c.contentType);
  writeBody(w, c);
}

/** §6 FramedContent. */
export function readFramedContent(r: Reader): FramedContent {
  const groupId = r.vec();
  const epoch = r.u64();
  const sender = readSender(r);
  const authenticatedData = r.vec();
  const body = readFramedContentBody(r, r.u8());
  return { groupId, epoch, sender, authenticatedData, ...body };
}

/**
 * §6.1 FramedContentTBS: `version = mls10`, `wire_format`, the content, and the group context
 * when the sender is a member or a new_member_commit (required then, ignored otherwise).
 */
export function writeFramedContentTbs(
  w: Writer,
  wireFormat: number,
  content: FramedContent,
  groupContext?: GroupContext,
): void {
  w.u16(MLS10).u16(wireFormat);
  writeFramedContent(w, content);
  const t = content.sender.senderType;
  if (t === SenderTypes.member || t === SenderTypes.new_member_commit) {
    if (groupContext === undefined)
      throw new TypeError("FramedContentTBS of a member or new_member_commit needs the GroupContext");
    writeGroupContext(w, groupContext);
  }
}

/** §6.1 FramedContentAuthData: the confirmation tag is written iff `contentType` is commit. */
export function writeFramedContentAuthData(
  w: Writer,
  auth: FramedContentAuthData,
  contentType: number,
): void {
  w.vec(auth.signature);
  if (contentType === ContentTypes.commit) {
    if (auth.confirmationTag === undefined)
      throw new TypeError("a commit's auth data needs a confirmation_tag");
    w.vec(auth.confirmationTag);
  } else if (auth.confirmationTag !== undefined)
    throw new TypeError("only a commit's auth data has a confirmation_tag");
}

/** §6.1 FramedContentAuthData of content of type `contentType` (confirmation_tag iff commit). */
export function readFramedContentAuthData(r: Reader, contentType: number): FramedContentAuthData {
  const signature = r.vec();
  return { signature, confirmationTag: contentType === ContentTypes.commit ? r.vec() : undefined };
}

// ---------------------------------------------------------------------------------- messages

/** §6.2 PublicMessage: membership_tag written iff the sender is a member. */
export function writePublicMessage(w: Writer, m: PublicMessage): void {
  writeFramedContent(w, m.content);
  writeFramedContentAuthData(w, m.auth, m.content.contentType);
  const member = m.content.sender.senderType === SenderTypes.member;
  if (member) {
    if (m.membershipTag === undefined) throw new TypeError("a member's PublicMessage needs a membership_tag");
    w.vec(m.membershipTag);
  } else if (m.membershipTag !== undefined)
    throw new TypeError("only a member's PublicMessage has a membership_tag");
}

/** §6.2 PublicMessage. */
export function readPublicMessage(r: Reader): PublicMessage {
  const content = readFramedContent(r);
  const auth = readFramedContentAuthData(r, content.contentType);
  const membershipTag = content.sender.senderType === SenderTypes.member ? r.vec() : undefined;
  return { content, auth, membershipTag };
}

/** §6.3 PrivateMessage. */
export function writePrivateMessage(w: Writer, m: PrivateMessage): void {
  w.vec(m.groupId)
    .u64(m.epoch)
    .u8(m.contentType)
    .vec(m.authenticatedData)
    .vec(m.encryptedSenderData)
    .vec(m.ciphertext);
}

/** §6.3 PrivateMessage (its content type must be one of §6). */
export function readPrivateMessage(r: Reader): PrivateMessage {
  const groupId = r.vec();
  const epoch = r.u64();
  const contentType = r.u8();
  // §2.1: the content type selects the plaintext's body; a value with no case cannot be read.
  if (
    contentType !== ContentTypes.application &&
    contentType !== ContentTypes.proposal &&
    contentType !== ContentTypes.commit
  )
    throw unknown("content type", contentType);
  const authenticatedData = r.vec();
  const encryptedSenderData = r.vec();
  const ciphertext = r.vec();
  return { groupId, epoch, contentType, authenticatedData, encryptedSenderData, ciphertext };
}

/** §6.3.1 PrivateMessageContent: body, auth data, then `padding` zero octets. */
export function writePrivateMessageContent(w: Writer, c: PrivateMessageContent): void {
  if (!Number.isInteger(c.padding) || c.padding < 0) throw new TypeError(`bad padding length ${c.padding}`);
  writeBody(w, c);
  writeFramedContentAuthData(w, c.auth, c.contentType);
  if (c.padding > 0) w.raw(new Uint8Array(c.padding));
}

/**
 * §6.3.1 PrivateMessageContent of PrivateMessage.content_type `contentType`. The padding is
 * every octet left in the reader after the auth data, and must be all zero.
 */
export function readPrivateMessageContent(r: Reader, contentType: number): PrivateMessageContent {
  const body = readFramedContentBody(r, contentType);
  const auth = readFramedContentAuthData(r, contentType);
  const padding = r.remaining;
  const pad = r.raw(padding);
  // §6.3.1: "A receiver MUST verify that there are no non-zero bytes in the padding field".
  let any = 0;
  for (let i = 0; i < pad.length; i++) any |= pad[i] as number;
  if (any !== 0)
    throw new DecodeError("§6.3.1 padding", "non-zero byte in the padding of a PrivateMessageContent");
  return { ...body, auth, padding };
}

/** §6.3.2 SenderData. */
export function writeSenderData(w: Writer, s: SenderData): void {
  if (s.reuseGuard.length !== 4) throw new TypeError("reuse_guard is 4 bytes");
  w.u32(s.leafIndex).u32(s.generation).raw(s.reuseGuard);
}

/** §6.3.2 SenderData. */
export function readSenderData(r: Reader): SenderData {
  const leafIndex = r.u32();
  const generation = r.u32();
  return { leafIndex, generation, reuseGuard: r.raw(4) };
}
