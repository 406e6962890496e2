/**
 * TLS codecs (RFC 9420 §2.1) of the key schedule's structures:
 *
 * - §8.1 `GroupContext { ProtocolVersion version; CipherSuite cipher_suite; opaque group_id<V>;
 *   uint64 epoch; opaque tree_hash<V>; opaque confirmed_transcript_hash<V>; Extension extensions<V>; }`
 * - §8.4 `PreSharedKeyID { PSKType psktype; select { external: opaque psk_id<V>;
 *   resumption: ResumptionPSKUsage usage; opaque psk_group_id<V>; uint64 psk_epoch; };
 *   opaque psk_nonce<V>; }`
 * - §8.4 `PSKLabel { PreSharedKeyID id; uint16 index; uint16 count; }` (encoder only)
 *
 * A PSKType outside §8.4 is refused ("§2.1 unknown enum value"); the ResumptionPSKUsage value is
 * kept as read (a plain uint8, checked by PSK validation). Byte fields decode as views.
 */
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import { readExtensions, writeExtensions } from "../keypackage/codec.js";
import { PskTypes, type GroupContext, type PreSharedKeyId } from "./types.js";

/** §8.1 GroupContext. */
export function writeGroupContext(w: Writer, gc: GroupContext): void {
  w.u16(gc.version)
    .u16(gc.ciphersuite)
    .vec(gc.groupId)
    .u64(gc.epoch)
    .vec(gc.treeHash)
    .vec(gc.confirmedTranscriptHash);
  writeExtensions(w, gc.extensions);
}

/** §8.1 GroupContext (syntax only: the version is checked where the context is used). */
export function readGroupContext(r: Reader): GroupContext {
  const version = r.u16();
  const ciphersuite = r.u16();
  const groupId = r.vec();
  const epoch = r.u64();
  const treeHash = r.vec();
  const confirmedTranscriptHash = r.vec();
  const extensions = readExtensions(r);
  return { version, ciphersuite, groupId, epoch, treeHash, confirmedTranscriptHash, extensions };
}

/** §8.4 PreSharedKeyID. */
export function writePreSharedKeyId(w: Writer, id: PreSharedKeyId): void {
  w.u8(id.pskType);
  if (id.pskType === PskTypes.external) w.vec(id.pskId);
  else if (id.pskType === PskTypes.resumption) w.u8(id.usage).vec(id.pskGroupId).u64(id.pskEpoch);
  else throw new TypeError(`unknown PSK type ${(id as { pskType: unknown }).pskType}`);
  w.vec(id.pskNonce);
}

/** §8.4 PreSharedKeyID. */
export function readPreSharedKeyId(r: Reader): PreSharedKeyId {
  const pskType = r.u8();
  if (pskType === PskTypes.external) {
    const pskId = r.vec();
    return { pskType, pskId, pskNonce: r.vec() };
  }
  if (pskType === PskTypes.resumption) {
    const usage = r.u8();
    const pskGroupId = r.vec();
    const pskEpoch = r.u64();
    return { pskType, usage, pskGroupId, pskEpoch, pskNonce: r.vec() };
  }
  // §2.1: a PSKType with no case in the select cannot be skipped.
  throw new DecodeError("§2.1 unknown enum value", `PSK type ${pskType}`);
}

/** §8.4 PSKLabel: the `index`-th of `count` PSKs of a psk_secret computation. */
export function writePskLabel(w: Writer, id: PreSharedKeyId, index: number, count: number): void {
  writePreSharedKeyId(w, id);
  w.u16(index).u16(count);
}
