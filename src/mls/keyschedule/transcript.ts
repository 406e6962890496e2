/**
 * RFC 9420 §8.2 transcript hashes and the confirmation tag:
 *
 *   confirmed_transcript_hash_[n] = Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
 *   interim_transcript_hash_[n]   = Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])
 *   struct { MAC confirmation_tag; } InterimTranscriptHashInput;      // MAC = opaque<V>
 *   confirmation_tag = MAC(confirmation_key, GroupContext.confirmed_transcript_hash)
 *
 * ConfirmedTranscriptHashInput { WireFormat wire_format; FramedContent content; opaque
 * signature<V>; } is encoded by the framing layer (framing/authenticatedContent.ts
 * `confirmedTranscriptHashInput`): this layer takes its bytes. The interim transcript hash of
 * epoch 0 is empty.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { concatBytes, constantTimeEqual } from "../crypto/bytes.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { syncDigestOf } from "../crypto/types.js";
import { Writer } from "../codec/index.js";

function digest(cs: CiphersuiteImpl, data: Uint8Array): Promise<Uint8Array> {
  const sync = syncDigestOf(cs.hash);
  return sync === undefined ? cs.hash.digest(data) : Promise.resolve(sync(data));
}

/** confirmed_transcript_hash_[n] from interim_transcript_hash_[n-1] and the encoded ConfirmedTranscriptHashInput. */
export function confirmedTranscriptHash(
  cs: CiphersuiteImpl,
  interimBefore: Uint8Array,
  confirmedInput: Uint8Array,
): Promise<Uint8Array> {
  return digest(cs, concatBytes(interimBefore, confirmedInput));
}

/** interim_transcript_hash_[n] from confirmed_transcript_hash_[n] and the commit's confirmation_tag. */
export function interimTranscriptHash(
  cs: CiphersuiteImpl,
  confirmed: Uint8Array,
  confirmationTag: Uint8Array,
): Promise<Uint8Array> {
  const w = new Writer(confirmed.length + confirmationTag.length + 4);
  w.raw(confirmed).vec(confirmationTag);
  return digest(cs, w.finish());
}

/** confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash). */
export function confirmationTag(
  cs: CiphersuiteImpl,
  confirmationKey: Uint8Array,
  confirmed: Uint8Array,
): Promise<Uint8Array> {
  return cs.hash.mac(confirmationKey, confirmed);
}

/**
 * Checks `tag` against MAC(confirmation_key, confirmed_transcript_hash) in constant time, else
 * throws "§8.2 confirmation_tag" with `code` (InvalidCommit for a commit; InvalidWelcome or
 * InvalidGroupInfo for a GroupInfo).
 */
export async function verifyConfirmationTag(
  cs: CiphersuiteImpl,
  confirmationKey: Uint8Array,
  confirmed: Uint8Array,
  tag: Uint8Array,
  code: ErrorCode = ErrorCode.InvalidCommit,
): Promise<void> {
  const expected = await confirmationTag(cs, confirmationKey, confirmed);
  // §8.2: the confirmation_tag must be the MAC of the new confirmed transcript hash.
  const ok = constantTimeEqual(expected, tag);
  expected.fill(0);
  if (!ok) throw new MlsRuleError(code, "§8.2 confirmation_tag", "the confirmation tag does not match");
}
