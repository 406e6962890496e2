/**
 * RFC 9420 §6.3 PrivateMessage: the content and its auth data encrypted with a key/nonce of
 * the sender's ratchet in the secret tree (§9), the sender identified by an encrypted SenderData.
 *
 *   struct { select (content_type) { case application: opaque application_data<V>;
 *                                     case proposal: Proposal proposal; case commit: Commit commit; };
 *            FramedContentAuthData auth; opaque padding[length_of_padding]; } PrivateMessageContent;
 *   struct { opaque group_id<V>; uint64 epoch; ContentType content_type; opaque authenticated_data<V>; } PrivateContentAAD;
 *   struct { uint32 leaf_index; uint32 generation; opaque reuse_guard[4]; } SenderData;
 *   struct { opaque group_id<V>; uint64 epoch; ContentType content_type; } SenderDataAAD;
 *
 *   ciphertext_sample = ciphertext[0..KDF.Nh-1]   (all of it when shorter)
 *   sender_data_key   = ExpandWithLabel(sender_data_secret, "key",   ciphertext_sample, AEAD.Nk)
 *   sender_data_nonce = ExpandWithLabel(sender_data_secret, "nonce", ciphertext_sample, AEAD.Nn)
 *   content nonce     = ratchet nonce with its first 4 bytes XORed with reuse_guard
 *
 * Receiving stages the ratchet key: `openPrivate` returns it unmerged, for a caller that accepts
 * the message only after more checks (a handshake message: the group layer merges the key once
 * the proposal or commit itself was accepted); `unprotectPrivate` merges it as soon as the
 * content decrypted, parsed and its signature verified. Either way a rejected message consumes
 * no key.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { DecodeError, Writer, decodeExact } from "../codec/index.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { labeledKdf } from "../keyschedule/kdf.js";
import type { SecretTree, StagedKey } from "../keyschedule/secretTree.js";
import type { GroupContext } from "../keyschedule/types.js";
import type { AuthenticatedContent } from "./authenticatedContent.js";
import {
  readPrivateMessageContent,
  readSenderData,
  writePrivateMessageContent,
  writeSenderData,
} from "./codec.js";
import { checkGroupAndEpoch } from "./public.js";
import { signFramedContent, verifyFramedContent, type SignatureKeyOf } from "./sign.js";
import {
  ContentTypes,
  SenderTypes,
  WireFormats,
  type FramedContent,
  type FramedContentAuthData,
  type FramedContentBody,
  type PrivateMessage,
  type PrivateMessageContent,
  type SenderData,
} from "./types.js";

/** Number of zero bytes of padding for a PrivateMessageContent of `length` bytes (§6.3.1). */
export type Padding = (length: number) => number;

/** Pads the content to a multiple of `block` bytes. */
export function padToMultipleOf(block: number): Padding {
  if (!Number.isInteger(block) || block < 1) throw new TypeError("bad padding block");
  return (length) => (block - (length % block)) % block;
}

/** No padding. */
export const NO_PADDING: Padding = () => 0;

/** Default padding: to a multiple of 32 bytes, which hides the exact length of short messages. */
export const DEFAULT_PADDING: Padding = padToMultipleOf(32);

function reject(rule: string, message: string, cause?: unknown): MlsRuleError {
  return new MlsRuleError(
    ErrorCode.InvalidMessage,
    rule,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

// ---------------------------------------------------------------------------------- sender data

/** §6.3.2 sender_data_key and sender_data_nonce from sender_data_secret and the content ciphertext. */
export async function senderDataKeyNonce(
  cs: CiphersuiteImpl,
  senderDataSecret: Uint8Array,
  ciphertext: Uint8Array,
): Promise<{ readonly key: Uint8Array; readonly nonce: Uint8Array }> {
  const k = labeledKdf(cs.kdf);
  const sample = ciphertext.subarray(0, Math.min(ciphertext.length, k.nh));
  const [key, nonce] = await Promise.all([
    k.expandWithLabel(senderDataSecret, "key", sample, cs.hpke.keyLength),
    k.expandWithLabel(senderDataSecret, "nonce", sample, cs.hpke.nonceLength),
  ]);
  return { key, nonce };
}

/** §6.3.2 SenderDataAAD. */
function senderDataAad(groupId: Uint8Array, epoch: bigint, contentType: number): Uint8Array {
  const w = new Writer(groupId.length + 16);
  w.vec(groupId).u64(epoch).u8(contentType);
  return w.finish();
}

/** §6.3.1 PrivateContentAAD. */
function privateContentAad(
  groupId: Uint8Array,
  epoch: bigint,
  contentType: number,
  authenticatedData: Uint8Array,
): Uint8Array {
  const w = new Writer(groupId.length + authenticatedData.length + 24);
  w.vec(groupId).u64(epoch).u8(contentType).vec(authenticatedData);
  return w.finish();
}

/** The ratchet nonce with its first 4 bytes XORed with reuse_guard (§6.3.1). */
function guardedNonce(nonce: Uint8Array, reuseGuard: Uint8Array): Uint8Array {
  const out = new Uint8Array(nonce);
  for (let i = 0; i < 4; i++) out[i] = (out[i] as number) ^ (reuseGuard[i] as number);
  return out;
}

// ------------------------------------------------------------------------------- content codec

/** §6.3.1 PrivateMessageContent, encoded with the zero padding `padding` asks for. */
function encodePrivateMessageContent(
  body: FramedContentBody,
  auth: FramedContentAuthData,
  padding: Padding,
): Uint8Array {
  const w = new Writer(256);
  writePrivateMessageContent(w, { ...body, auth, padding: 0 });
  const unpadded = w.finish();
  const pad = padding(unpadded.length);
  if (!Number.isInteger(pad) || pad < 0) throw new TypeError(`bad padding length ${pad}`);
  if (pad === 0) return unpadded;
  // The padding octets are zero: a fresh array past the unpadded content.
  const out = new Uint8Array(unpadded.length + pad);
  out.set(unpadded);
  unpadded.fill(0);
  return out;
}

/** §6.3.1 PrivateMessageContent of `contentType`: body, auth data, and zero padding only. */
function decodePrivateMessageContent(plaintext: Uint8Array, contentType: number): PrivateMessageContent {
  try {
    return decodeExact(plaintext, (r) => readPrivateMessageContent(r, contentType));
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    // §6.3.1: the padding must be all zero bytes; the rest must parse as the content and its auth data.
    if (e.rule === "§6.3.1 padding") throw reject("§6.3.1 padding", "non-zero byte in the padding", e);
    throw reject("§6.3.1 content", `malformed PrivateMessageContent: ${e.message}`, e);
  }
}

// -------------------------------------------------------------------------------------- protect

/** What encrypting a signed content as a PrivateMessage needs (the sender's current epoch). */
export interface PrivateProtectContext {
  readonly senderDataSecret: Uint8Array;
  /** The epoch's secret tree; retired by the call (use the returned one). */
  readonly secretTree: SecretTree;
  /** Padding of the PrivateMessageContent (default `DEFAULT_PADDING`). */
  readonly padding?: Padding;
}

/**
 * Encrypts a signed content (`ac.wireFormat` must be mls_private_message, the sender a member)
 * as a PrivateMessage with the sender's next ratchet key. Returns the message and the secret
 * tree with that key consumed.
 */
export async function toPrivateMessage(
  cs: CiphersuiteImpl,
  ac: AuthenticatedContent,
  ctx: PrivateProtectContext,
): Promise<{ readonly message: PrivateMessage; readonly secretTree: SecretTree }> {
  const { content, auth } = ac;
  if (ac.wireFormat !== WireFormats.mls_private_message) throw new TypeError("not a private message content");
  // §6.3: only members send PrivateMessages.
  if (content.sender.senderType !== SenderTypes.member)
    throw reject("§6.3 sender_type", "only a member can send a PrivateMessage");
  const leaf = content.sender.leafIndex;
  const staged = await ctx.secretTree.nextKeyAndNonce(leaf, content.contentType);
  const reuseGuard = cs.rng.randomBytes(4);
  const plaintext = encodePrivateMessageContent(content, auth, ctx.padding ?? DEFAULT_PADDING);
  const aad = privateContentAad(
    content.groupId,
    content.epoch,
    content.contentType,
    content.authenticatedData,
  );
  const nonce = guardedNonce(staged.nonce, reuseGuard);
  const ciphertext = await cs.hpke.encryptAead(staged.key, nonce, aad, plaintext);
  plaintext.fill(0);
  zeroStaged(staged, nonce);

  const senderData: SenderData = { leafIndex: leaf, generation: staged.generation, reuseGuard };
  const sdPlain = new Writer(12);
  writeSenderData(sdPlain, senderData);
  const sd = await senderDataKeyNonce(cs, ctx.senderDataSecret, ciphertext);
  const encryptedSenderData = await cs.hpke.encryptAead(
    sd.key,
    sd.nonce,
    senderDataAad(content.groupId, content.epoch, content.contentType),
    sdPlain.finish(),
  );
  sd.key.fill(0);
  const message: PrivateMessage = {
    groupId: content.groupId,
    epoch: content.epoch,
    contentType: content.contentType,
    authenticatedData: content.authenticatedData,
    encryptedSenderData,
    ciphertext,
  };
  return { message, secretTree: ctx.secretTree.merge(staged) };
}

function zeroStaged(staged: StagedKey, nonce: Uint8Array): void {
  staged.key.fill(0);
  staged.nonce.fill(0);
  nonce.fill(0);
}

/** What signing and encrypting a content as a PrivateMessage needs. */
export interface PrivateProtectInput extends PrivateProtectContext {
  readonly content: FramedContent;
  readonly signKey: Uint8Array;
  readonly groupContext: GroupContext;
  /** The commit's confirmation_tag (§8.2); present iff the content is a commit. */
  readonly confirmationTag?: Uint8Array;
}

/** Signs `content` (§6.1, wire format mls_private_message) and encrypts it (§6.3). */
export async function protectPrivate(
  cs: CiphersuiteImpl,
  input: PrivateProtectInput,
): Promise<{ readonly message: PrivateMessage; readonly secretTree: SecretTree }> {
  const { content } = input;
  if ((content.contentType === ContentTypes.commit) !== (input.confirmationTag !== undefined))
    throw new TypeError("a confirmation tag goes with a commit, and only with a commit");
  const wireFormat = WireFormats.mls_private_message;
  const signature = await signFramedContent(cs, input.signKey, wireFormat, content, input.groupContext);
  const ac: AuthenticatedContent = {
    wireFormat,
    content,
    auth: { signature, confirmationTag: input.confirmationTag },
  };
  return toPrivateMessage(cs, ac, input);
}

// ------------------------------------------------------------------------------------ unprotect

/** What decrypting a received PrivateMessage needs (the epoch it was sent in). */
export interface PrivateReceiveContext {
  /** The GroupContext of the message's epoch: the group and epoch expected, and the signed context. */
  readonly groupContext: GroupContext;
  readonly senderDataSecret: Uint8Array;
  /** The epoch's secret tree; retired on success (use the returned one), unchanged on failure. */
  readonly secretTree: SecretTree;
  /** The sender's signature key (a member: `content.sender.leafIndex`); throws for a blank leaf. */
  readonly signatureKey: SignatureKeyOf;
}

/** The decrypted, verified content of a PrivateMessage, and the tree with its key consumed. */
export interface UnprotectedPrivate {
  readonly content: AuthenticatedContent;
  readonly generation: number;
  readonly secretTree: SecretTree;
}

/**
 * The decrypted, verified content of a PrivateMessage and its ratchet key, staged: nothing is
 * consumed until the caller merges `staged` into the tree it came from (`ctx.secretTree.merge`),
 * which it does only once it accepted the whole message (§9.2: a consumed key is deleted).
 */
export interface OpenedPrivate {
  readonly content: AuthenticatedContent;
  readonly generation: number;
  /** The key the message used (already zeroed): its `merge` consumes it. */
  readonly staged: StagedKey;
}

/** §6.3.2 decrypts and decodes the SenderData. */
async function openSenderData(
  cs: CiphersuiteImpl,
  msg: PrivateMessage,
  senderDataSecret: Uint8Array,
): Promise<SenderData> {
  const sd = await senderDataKeyNonce(cs, senderDataSecret, msg.ciphertext);
  let plain: Uint8Array;
  try {
    plain = await cs.hpke.decryptAead(
      sd.key,
      sd.nonce,
      senderDataAad(msg.groupId, msg.epoch, msg.contentType),
      msg.encryptedSenderData,
    );
  } catch (e) {
    // §6.3.2: the sender data must decrypt under sender_data_key / sender_data_nonce.
    throw reject("§6.3.2 sender_data", "the sender data does not decrypt", e);
  } finally {
    sd.key.fill(0);
  }
  try {
    return decodeExact(plain, readSenderData);
  } catch (e) {
    // §6.3.2: SenderData is exactly { uint32 leaf_index; uint32 generation; opaque reuse_guard[4]; }.
    if (e instanceof DecodeError) throw reject("§6.3.2 sender_data", "malformed sender data", e);
    throw e;
  }
}

/** The FramedContent a PrivateMessage carries: its header fields and the decrypted body. */
function framedContentOf(
  head: Pick<FramedContent, "groupId" | "epoch" | "sender" | "authenticatedData">,
  body: PrivateMessageContent,
): FramedContent {
  if (body.contentType === ContentTypes.application)
    return { ...head, contentType: body.contentType, applicationData: body.applicationData };
  if (body.contentType === ContentTypes.proposal)
    return { ...head, contentType: body.contentType, proposal: body.proposal };
  return { ...head, contentType: body.contentType, commit: body.commit };
}

/**
 * Decrypts and checks a received PrivateMessage: group ("§6 wrong_group"), epoch ("§6
 * wrong_epoch"), sender data ("§6.3.2 sender_data"), generation ("§9.2 generation_reused",
 * "§9.2 generation_window"), content ("§6.3.1 decryption", "§6.3.1 content", "§6.3.1
 * padding") and signature ("§6.1 signature"). The key is consumed (`secretTree` returned).
 */
export async function unprotectPrivate(
  cs: CiphersuiteImpl,
  msg: PrivateMessage,
  ctx: PrivateReceiveContext,
): Promise<UnprotectedPrivate> {
  const opened = await openPrivate(cs, msg, ctx);
  return {
    content: opened.content,
    generation: opened.generation,
    secretTree: ctx.secretTree.merge(opened.staged),
  };
}

/**
 * `unprotectPrivate`'s checks, the key staged and not consumed (`ctx.secretTree` stays live and
 * unchanged): for a message whose acceptance depends on more than its framing.
 */
export async function openPrivate(
  cs: CiphersuiteImpl,
  msg: PrivateMessage,
  ctx: PrivateReceiveContext,
): Promise<OpenedPrivate> {
  const gc = ctx.groupContext;
  checkGroupAndEpoch(msg.groupId, msg.epoch, gc);
  const ct = msg.contentType;
  // §6: ContentType is application, proposal or commit.
  if (ct !== ContentTypes.application && ct !== ContentTypes.proposal && ct !== ContentTypes.commit)
    throw reject("§6 content_type", `unknown content type ${ct}`);

  const senderData = await openSenderData(cs, msg, ctx.senderDataSecret);
  const staged = await ctx.secretTree.keyAndNonce(senderData.leafIndex, ct, senderData.generation);
  const nonce = guardedNonce(staged.nonce, senderData.reuseGuard);
  let plaintext: Uint8Array;
  try {
    plaintext = await cs.hpke.decryptAead(
      staged.key,
      nonce,
      privateContentAad(msg.groupId, msg.epoch, ct, msg.authenticatedData),
      msg.ciphertext,
    );
  } catch (e) {
    // §6.3.1: the content must decrypt under the sender's ratchet key and the guarded nonce.
    throw reject("§6.3.1 decryption", "the content does not decrypt", e);
  } finally {
    zeroStaged(staged, nonce);
  }

  // The decoded fields are views into the plaintext, which the caller then owns.
  const decoded = decodePrivateMessageContent(plaintext, ct);
  const content = framedContentOf(
    {
      groupId: msg.groupId,
      epoch: msg.epoch,
      sender: { senderType: SenderTypes.member, leafIndex: senderData.leafIndex },
      authenticatedData: msg.authenticatedData,
    },
    decoded,
  );
  const auth = decoded.auth;
  const publicKey = await ctx.signatureKey(content);
  await verifyFramedContent(cs, publicKey, WireFormats.mls_private_message, content, gc, auth.signature);
  return {
    content: { wireFormat: WireFormats.mls_private_message, content, auth },
    generation: senderData.generation,
    staged,
  };
}
