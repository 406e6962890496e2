/**
 * RFC 9420 §6.2 PublicMessage: a signed FramedContent, plus for a member sender a membership
 * tag over AuthenticatedContentTBM:
 *
 *   struct { FramedContentTBS content_tbs; FramedContentAuthData auth; } AuthenticatedContentTBM;
 *   membership_tag = MAC(membership_key, AuthenticatedContentTBM)
 *
 * Receiving checks, in order: group, epoch, content type allowed for the sender, membership
 * tag, signature. Each failure is an InvalidMessage naming its rule.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { Writer } from "../codec/index.js";
import { bytesEqual, constantTimeEqual } from "../crypto/bytes.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import type { GroupContext } from "../keyschedule/types.js";
import type { AuthenticatedContent } from "./authenticatedContent.js";
import { writeFramedContentAuthData } from "./codec.js";
import { framedContentTbs, signFramedContent, verifyFramedContent, type SignatureKeyOf } from "./sign.js";
import {
  ContentTypes,
  SenderTypes,
  WireFormats,
  type FramedContent,
  type FramedContentAuthData,
  type PublicMessage,
} from "./types.js";

/** §6.2 AuthenticatedContentTBM, encoded. */
function authenticatedContentTbm(
  content: FramedContent,
  auth: FramedContentAuthData,
  groupContext: GroupContext,
): Uint8Array {
  const tbs = framedContentTbs(WireFormats.mls_public_message, content, groupContext);
  const w = new Writer(tbs.length + auth.signature.length + 80);
  w.raw(tbs);
  writeFramedContentAuthData(w, auth, content.contentType);
  return w.finish();
}

/** §6.2 membership_tag = MAC(membership_key, AuthenticatedContentTBM). */
export function membershipTag(
  cs: CiphersuiteImpl,
  membershipKey: Uint8Array,
  content: FramedContent,
  auth: FramedContentAuthData,
  groupContext: GroupContext,
): Promise<Uint8Array> {
  return cs.hash.mac(membershipKey, authenticatedContentTbm(content, auth, groupContext));
}

/**
 * The PublicMessage of a signed content (`ac.wireFormat` must be mls_public_message); the
 * membership tag is added for a member sender, with the current epoch's membership_key.
 */
export async function toPublicMessage(
  cs: CiphersuiteImpl,
  ac: AuthenticatedContent,
  groupContext: GroupContext,
  membershipKey: Uint8Array | undefined,
): Promise<PublicMessage> {
  if (ac.wireFormat !== WireFormats.mls_public_message) throw new TypeError("not a public message content");
  const { content, auth } = ac;
  if (content.sender.senderType !== SenderTypes.member) return { content, auth, membershipTag: undefined };
  if (membershipKey === undefined) throw new TypeError("a member's PublicMessage needs the membership key");
  return {
    content,
    auth,
    membershipTag: await membershipTag(cs, membershipKey, content, auth, groupContext),
  };
}

/** What protecting a content as a PublicMessage needs. */
export interface PublicProtectInput {
  readonly content: FramedContent;
  readonly signKey: Uint8Array;
  /** The epoch the message is sent in (signed for member and new_member_commit senders). */
  readonly groupContext: GroupContext;
  /** The epoch's membership_key; required for a member sender. */
  readonly membershipKey?: Uint8Array;
  /** The commit's confirmation_tag (§8.2); present iff the content is a commit. */
  readonly confirmationTag?: Uint8Array;
}

/** Signs `content` and frames it as a PublicMessage (§6.1, §6.2). */
export async function protectPublic(cs: CiphersuiteImpl, input: PublicProtectInput): Promise<PublicMessage> {
  const { content, groupContext } = input;
  // §6.2: application data is never sent as a PublicMessage.
  if (content.contentType === ContentTypes.application)
    throw reject("§6.2 application_in_public", "application data must be sent as a PrivateMessage");
  if ((content.contentType === ContentTypes.commit) !== (input.confirmationTag !== undefined))
    throw new TypeError("a confirmation tag goes with a commit, and only with a commit");
  const wireFormat = WireFormats.mls_public_message;
  const signature = await signFramedContent(cs, input.signKey, wireFormat, content, groupContext);
  const ac: AuthenticatedContent = {
    wireFormat,
    content,
    auth: { signature, confirmationTag: input.confirmationTag },
  };
  return toPublicMessage(cs, ac, groupContext, input.membershipKey);
}

/** What checking a received PublicMessage needs. */
export interface PublicReceiveContext {
  /** The receiver's current GroupContext: the group and epoch expected, and the signed context. */
  readonly groupContext: GroupContext;
  /** The epoch's membership_key (checks a member sender's membership tag). */
  readonly membershipKey: Uint8Array;
  /** The sender's signature key. */
  readonly signatureKey: SignatureKeyOf;
}

function reject(rule: string, message: string): MlsRuleError {
  return new MlsRuleError(ErrorCode.InvalidMessage, rule, message);
}

/** §6 checks that a content belongs to the receiver's group and epoch. */
export function checkGroupAndEpoch(groupId: Uint8Array, epoch: bigint, groupContext: GroupContext): void {
  // §6: a message for another group is rejected.
  if (!bytesEqual(groupId, groupContext.groupId))
    throw reject("§6 wrong_group", "the message is for another group");
  // §6: a handshake message must be for the current epoch.
  if (epoch !== groupContext.epoch)
    throw reject(
      "§6 wrong_epoch",
      `the message is for epoch ${epoch}, the group is at ${groupContext.epoch}`,
    );
}

/** §6 / §12.1.8: what each sender type may send. */
function checkSenderContentType(content: FramedContent): void {
  const t = content.sender.senderType;
  // §6.2: application data is never sent as a PublicMessage.
  if (content.contentType === ContentTypes.application)
    throw reject("§6.2 application_in_public", "application data must be sent as a PrivateMessage");
  // §6: external and new_member_proposal senders send proposals; new_member_commit senders send commits.
  if (
    (t === SenderTypes.external || t === SenderTypes.new_member_proposal) &&
    content.contentType !== ContentTypes.proposal
  )
    throw reject("§6 sender_content_type", `sender type ${t} may only send proposals`);
  if (t === SenderTypes.new_member_commit && content.contentType !== ContentTypes.commit)
    throw reject("§6 sender_content_type", "a new_member_commit sender may only send a commit");
}

/**
 * Checks a received PublicMessage: group ("§6 wrong_group"), epoch ("§6 wrong_epoch"), the
 * content type its sender may send, the membership tag of a member sender ("§6.2
 * membership_tag"), and the signature ("§6.1 signature"). Returns its AuthenticatedContent.
 */
export async function unprotectPublic(
  cs: CiphersuiteImpl,
  msg: PublicMessage,
  ctx: PublicReceiveContext,
): Promise<AuthenticatedContent> {
  const { content, auth } = msg;
  const gc = ctx.groupContext;
  checkGroupAndEpoch(content.groupId, content.epoch, gc);
  checkSenderContentType(content);
  // §6.1: a commit carries a confirmation tag, other contents none.
  if ((content.contentType === ContentTypes.commit) !== (auth.confirmationTag !== undefined))
    throw reject(
      "§6.1 confirmation_tag_presence",
      "a confirmation tag goes with a commit, and only with a commit",
    );

  const isMember = content.sender.senderType === SenderTypes.member;
  // §6.2: a member sender's message carries a membership tag, others none.
  if (isMember !== (msg.membershipTag !== undefined))
    throw reject("§6.2 membership_tag", "membership tag missing or unexpected for this sender type");
  if (isMember) {
    const expected = await membershipTag(cs, ctx.membershipKey, content, auth, gc);
    // §6.2: the membership tag must be the MAC of AuthenticatedContentTBM under membership_key.
    const ok = constantTimeEqual(expected, msg.membershipTag as Uint8Array);
    if (!ok) throw reject("§6.2 membership_tag", "the membership tag does not match");
  }

  const publicKey = await ctx.signatureKey(content);
  await verifyFramedContent(cs, publicKey, WireFormats.mls_public_message, content, gc, auth.signature);
  return { wireFormat: WireFormats.mls_public_message, content, auth };
}
