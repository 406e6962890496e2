/**
 * TLS codecs (RFC 9420 §2.1) of the structures a key package is made of:
 *
 * - §13 (and §7.2) `Extension { ExtensionType extension_type; opaque extension_data<V>; }`
 * - §7.2 `Capabilities`: five `uint16 …<V>` lists of code points
 * - §7.2 `Lifetime { uint64 not_before; uint64 not_after; }`
 * - §7.2 `LeafNode` and `LeafNodeTBS` (the signed part, plus group_id and leaf_index when the
 *   source is update or commit)
 * - §10 `KeyPackage` and `KeyPackageTBS` (all but the signature)
 *
 * Decoding is syntax only (§10.1 / §7.3 validation lives beside the objects that check it); byte
 * fields are views into the input. A LeafNodeSource outside §7.2 is refused ("§2.1 unknown enum
 * value"): the select that follows it cannot be skipped.
 */
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import { readCredential, writeCredential } from "../credential/codec.js";
import {
  LeafNodeSources,
  type Capabilities,
  type Extension,
  type KeyPackage,
  type LeafNode,
  type LeafNodeSource,
  type Lifetime,
} from "./types.js";

const readU16 = (r: Reader): number => r.u16();
const writeU16 = (w: Writer, v: number): void => {
  w.u16(v);
};

/** §13 Extension. */
export function writeExtension(w: Writer, e: Extension): void {
  w.u16(e.extensionType).vec(e.extensionData);
}

/** §13 Extension (any type: its data is a length-prefixed opaque). */
export function readExtension(r: Reader): Extension {
  const extensionType = r.u16();
  return { extensionType, extensionData: r.vec() };
}

/** `Extension extensions<V>`, as every struct that carries extensions writes it. */
export function writeExtensions(w: Writer, list: readonly Extension[]): void {
  w.vecOf(list, writeExtension);
}

/** `Extension extensions<V>`. */
export function readExtensions(r: Reader): Extension[] {
  return r.vecOf(readExtension);
}

/** §7.2 Capabilities. */
export function writeCapabilities(w: Writer, c: Capabilities): void {
  w.vecOf(c.versions, writeU16);
  w.vecOf(c.ciphersuites, writeU16);
  w.vecOf(c.extensions, writeU16);
  w.vecOf(c.proposals, writeU16);
  w.vecOf(c.credentials, writeU16);
}

/** §7.2 Capabilities. */
export function readCapabilities(r: Reader): Capabilities {
  const versions = r.vecOf(readU16);
  const ciphersuites = r.vecOf(readU16);
  const extensions = r.vecOf(readU16);
  const proposals = r.vecOf(readU16);
  const credentials = r.vecOf(readU16);
  return { versions, ciphersuites, extensions, proposals, credentials };
}

/** §7.2 Lifetime. */
export function writeLifetime(w: Writer, l: Lifetime): void {
  w.u64(l.notBefore).u64(l.notAfter);
}

/** §7.2 Lifetime. */
export function readLifetime(r: Reader): Lifetime {
  const notBefore = r.u64();
  const notAfter = r.u64();
  return { notBefore, notAfter };
}

/** The group a leaf node signed with source update or commit belongs to (§7.2 LeafNodeTBS). */
export interface LeafNodeTbsContext {
  readonly groupId: Uint8Array;
  readonly leafIndex: number;
}

/** LeafNode up to (not including) its extensions: the part LeafNode and LeafNodeTBS share. */
function writeLeafNodeHead(w: Writer, leaf: LeafNode): void {
  w.vec(leaf.encryptionKey).vec(leaf.signatureKey);
  writeCredential(w, leaf.credential);
  writeCapabilities(w, leaf.capabilities);
  w.u8(leaf.leafNodeSource);
  switch (leaf.leafNodeSource) {
    case LeafNodeSources.key_package:
      if (leaf.lifetime === undefined) throw new TypeError("a key_package leaf node needs a lifetime");
      writeLifetime(w, leaf.lifetime);
      break;
    case LeafNodeSources.update:
      break;
    case LeafNodeSources.commit:
      if (leaf.parentHash === undefined) throw new TypeError("a commit leaf node needs a parent_hash");
      w.vec(leaf.parentHash);
      break;
    default:
      throw new TypeError(`unknown leaf node source ${String(leaf.leafNodeSource)}`);
  }
  writeExtensions(w, leaf.extensions);
}

/** §7.2 LeafNode. */
export function writeLeafNode(w: Writer, leaf: LeafNode): void {
  writeLeafNodeHead(w, leaf);
  w.vec(leaf.signature);
}

/**
 * §7.2 LeafNodeTBS: the leaf node without its signature, followed, when the source is update
 * or commit, by `opaque group_id<V>; uint32 leaf_index;` of `ctx` (required then, ignored for
 * key_package).
 */
export function writeLeafNodeTbs(w: Writer, leaf: LeafNode, ctx?: LeafNodeTbsContext): void {
  writeLeafNodeHead(w, leaf);
  if (leaf.leafNodeSource === LeafNodeSources.key_package) return;
  if (ctx === undefined)
    throw new TypeError("LeafNodeTBS of an update or commit leaf needs group_id and leaf_index");
  w.vec(ctx.groupId).u32(ctx.leafIndex);
}

/** §7.2 LeafNode. */
export function readLeafNode(r: Reader): LeafNode {
  const encryptionKey = r.vec();
  const signatureKey = r.vec();
  const credential = readCredential(r);
  const capabilities = readCapabilities(r);
  const leafNodeSource = r.u8();
  let lifetime: Lifetime | undefined;
  let parentHash: Uint8Array | undefined;
  if (leafNodeSource === LeafNodeSources.key_package) lifetime = readLifetime(r);
  else if (leafNodeSource === LeafNodeSources.commit) parentHash = r.vec();
  // §2.1: a LeafNodeSource with no case in the select cannot be skipped.
  else if (leafNodeSource !== LeafNodeSources.update)
    throw new DecodeError("§2.1 unknown enum value", `leaf node source ${leafNodeSource}`);
  const extensions = readExtensions(r);
  const signature = r.vec();
  return {
    encryptionKey,
    signatureKey,
    credential,
    capabilities,
    leafNodeSource: leafNodeSource as LeafNodeSource,
    lifetime,
    parentHash,
    extensions,
    signature,
  };
}

/** §10 KeyPackageTBS: the key package without its signature. */
export function writeKeyPackageTbs(w: Writer, kp: KeyPackage): void {
  w.u16(kp.version).u16(kp.ciphersuite).vec(kp.initKey);
  writeLeafNode(w, kp.leafNode);
  writeExtensions(w, kp.extensions);
}

/** §10 KeyPackage. */
export function writeKeyPackage(w: Writer, kp: KeyPackage): void {
  writeKeyPackageTbs(w, kp);
  w.vec(kp.signature);
}

/** §10 KeyPackage (syntax only: version, suite and leaf source are checked by §10.1 validation). */
export function readKeyPackage(r: Reader): KeyPackage {
  const version = r.u16();
  const ciphersuite = r.u16();
  const initKey = r.vec();
  const leafNode = readLeafNode(r);
  const extensions = readExtensions(r);
  const signature = r.vec();
  return { version, ciphersuite, initKey, leafNode, extensions, signature };
}
