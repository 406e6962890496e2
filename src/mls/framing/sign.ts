/**
 * RFC 9420 §6.1 content signing:
 *
 *   struct { ProtocolVersion version = mls10; WireFormat wire_format; FramedContent content;
 *            select (content.sender.sender_type) { case member: case new_member_commit: GroupContext context;
 *                                                  case external: case new_member_proposal: struct{}; }; } FramedContentTBS;
 *   signature = SignWithLabel(SignatureKey, "FramedContentTBS", FramedContentTBS)
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { Writer } from "../codec/index.js";
import { signWithLabel, verifyWithLabel } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import type { GroupContext } from "../keyschedule/types.js";
import { writeFramedContentTbs } from "./codec.js";
import type { FramedContent } from "./types.js";

/** The sender's signature public key for a content (from the tree, external_senders, or the commit's leaf). */
export type SignatureKeyOf = (content: FramedContent) => Uint8Array | Promise<Uint8Array>;

/** §6.1 FramedContentTBS, encoded. `groupContext` is used for member and new_member_commit senders. */
export function framedContentTbs(
  wireFormat: number,
  content: FramedContent,
  groupContext: GroupContext,
): Uint8Array {
  const w = new Writer(256);
  writeFramedContentTbs(w, wireFormat, content, groupContext);
  return w.finish();
}

/** §6.1 signature of a content sent with `wireFormat`. */
export function signFramedContent(
  cs: CiphersuiteImpl,
  signKey: Uint8Array,
  wireFormat: number,
  content: FramedContent,
  groupContext: GroupContext,
): Promise<Uint8Array> {
  return signWithLabel(
    signKey,
    "FramedContentTBS",
    framedContentTbs(wireFormat, content, groupContext),
    cs.signature,
  );
}

/** Checks a §6.1 content signature, else throws "§6.1 signature" (InvalidMessage). */
export async function verifyFramedContent(
  cs: CiphersuiteImpl,
  publicKey: Uint8Array,
  wireFormat: number,
  content: FramedContent,
  groupContext: GroupContext,
  signature: Uint8Array,
): Promise<void> {
  const tbs = framedContentTbs(wireFormat, content, groupContext);
  // §6.1: the signature over FramedContentTBS must verify with the sender's signature key.
  const ok = await verifyWithLabel(publicKey, "FramedContentTBS", tbs, signature, cs.signature).catch(
    () => false,
  );
  if (!ok)
    throw new MlsRuleError(
      ErrorCode.InvalidMessage,
      "§6.1 signature",
      "the content signature does not verify",
    );
}
