/**
 * TLS codecs (RFC 9420 §2.1) of the §7.6 TreeKEM structures:
 *
 *     struct { opaque kem_output<V>; opaque ciphertext<V>; } HPKECiphertext;
 *     struct { HPKEPublicKey encryption_key; HPKECiphertext encrypted_path_secret<V>; } UpdatePathNode;
 *     struct { LeafNode leaf_node; UpdatePathNode nodes<V>; } UpdatePath;
 *
 * Byte fields decode as views into the input.
 */
import type { Reader, Writer } from "../codec/index.js";
import { readLeafNode, writeLeafNode } from "../keypackage/codec.js";
import type { HpkeCiphertext, UpdatePath, UpdatePathNode } from "./types.js";

/** §7.6 HPKECiphertext. */
export function writeHpkeCiphertext(w: Writer, c: HpkeCiphertext): void {
  w.vec(c.kemOutput).vec(c.ciphertext);
}

/** §7.6 HPKECiphertext. */
export function readHpkeCiphertext(r: Reader): HpkeCiphertext {
  const kemOutput = r.vec();
  return { kemOutput, ciphertext: r.vec() };
}

/** §7.6 UpdatePathNode. */
export function writeUpdatePathNode(w: Writer, n: UpdatePathNode): void {
  w.vec(n.encryptionKey).vecOf(n.encryptedPathSecret, writeHpkeCiphertext);
}

/** §7.6 UpdatePathNode. */
export function readUpdatePathNode(r: Reader): UpdatePathNode {
  const encryptionKey = r.vec();
  return { encryptionKey, encryptedPathSecret: r.vecOf(readHpkeCiphertext) };
}

/** §7.6 UpdatePath. */
export function writeUpdatePath(w: Writer, p: UpdatePath): void {
  writeLeafNode(w, p.leafNode);
  w.vecOf(p.nodes, writeUpdatePathNode);
}

/** §7.6 UpdatePath. */
export function readUpdatePath(r: Reader): UpdatePath {
  const leafNode = readLeafNode(r);
  return { leafNode, nodes: r.vecOf(readUpdatePathNode) };
}
