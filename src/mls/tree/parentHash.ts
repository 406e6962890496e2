/**
 * RFC 9420 §7.9 parent hashes:
 *
 *     struct { HPKEPublicKey encryption_key; opaque parent_hash<V>;
 *              opaque original_sibling_tree_hash<V>; } ParentHashInput;
 *
 * The parent hash of P with copath child S hashes P's key, P's own parent_hash, and the tree
 * hash of S with P's unmerged leaves removed (§7.9 "original sibling tree hash").
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { Writer } from "../codec/writer.js";
import { bytesEqual } from "../crypto/bytes.js";
import type { Hash } from "../crypto/types.js";
import { originalSubtreeHash, subtreeHash } from "./hash.js";
import { isInSubtree, leafToNode, left, right } from "./math.js";
import { resolution, type PathStep } from "./tree.js";
import { checkUnmergedLeaves } from "./unmergedLeaves.js";
import type { ParentNode, RatchetTree } from "./types.js";

export const PARENT_HASH_RULE = "§7.9.2 parent_hash";

/** §7.9 ParentHashInput, hashed. */
export function parentHashOf(
  encryptionKey: Uint8Array,
  parentHash: Uint8Array,
  originalSiblingTreeHash: Uint8Array,
  hash: Hash,
): Promise<Uint8Array> {
  const w = new Writer(encryptionKey.length + parentHash.length + originalSiblingTreeHash.length + 12);
  w.vec(encryptionKey).vec(parentHash).vec(originalSiblingTreeHash);
  return hash.digest(w.finish());
}

/** §7.9 the parent hash of parent node `pNode` with copath child `s` (a child of its node). */
export async function parentHashWithCopathChild(
  tree: RatchetTree,
  pNode: ParentNode,
  s: number,
  hash: Hash,
): Promise<Uint8Array> {
  const sibling = await originalSubtreeHash(tree, s, pNode.unmergedLeaves, hash);
  return parentHashOf(pNode.encryptionKey, pNode.parentHash, sibling, hash);
}

/**
 * §7.9 parent hashes of a fresh UpdatePath (§7.5): `steps` is the sender's filtered direct path
 * in `tree` (any version of the tree whose copath subtrees are as after the commit) and `keys`
 * the path's new encryption keys, bottom-up. Computed top-down: the root's parent_hash is empty,
 * each node's is the parent hash of the next node up with that node's copath child, and the
 * leaf's is the parent hash of the first node. New parent nodes have no unmerged leaves, so the
 * original sibling tree hashes are the plain tree hashes.
 */
export async function pathParentHashes(
  tree: RatchetTree,
  steps: readonly PathStep[],
  keys: readonly Uint8Array[],
  hash: Hash,
): Promise<{ readonly nodeParentHashes: Uint8Array[]; readonly leafParentHash: Uint8Array }> {
  if (keys.length !== steps.length) throw new TypeError("one encryption key per filtered direct path node");
  const nodeParentHashes = new Array<Uint8Array>(steps.length);
  let above: Uint8Array = new Uint8Array(0);
  for (let i = steps.length - 1; i >= 0; i--) {
    const step = steps[i] as PathStep;
    nodeParentHashes[i] = above;
    above = await parentHashOf(
      keys[i] as Uint8Array,
      above,
      await subtreeHash(tree, step.copathChild, hash),
      hash,
    );
  }
  return { nodeParentHashes, leafParentHash: above };
}

/** The parent_hash field of a non-blank node: a parent's, or a commit leaf's (else undefined). */
function parentHashField(tree: RatchetTree, d: number): Uint8Array | undefined {
  const n = tree[d];
  if (n === undefined) return undefined;
  return n.nodeType === 2 ? n.parent.parentHash : n.leaf.parentHash;
}

/**
 * §7.9.2: the node D on P's `c` side that could carry P's parent hash. D qualifies when D is in
 * the resolution of C and P's unmerged leaves under C are exactly the rest of that resolution;
 * at most one node can, since it is the resolution minus those leaves.
 */
function claimant(tree: RatchetTree, pNode: ParentNode, c: number): number | undefined {
  const res = resolution(tree, c);
  const unmerged = new Set(pNode.unmergedLeaves.map(leafToNode).filter((x) => isInSubtree(x, c)));
  const rest = res.filter((x) => !unmerged.has(x));
  if (rest.length !== 1) return undefined;
  // The intersection of P's unmerged leaves with C's subtree equals the resolution of C minus D.
  if (res.length - 1 !== unmerged.size) return undefined;
  return rest[0];
}

/**
 * §7.9.2 (joining): every non-blank parent node P is parent-hash valid, checked top-down: exactly
 * one descendant D (on either side) has a parent_hash equal to the parent hash of P with the
 * other child as copath child, D being the one node of that side's resolution not among P's
 * unmerged leaves. Runs the §7.9.1 unmerged-leaves check first (the original sibling tree hash
 * relies on it). Throws MlsRuleError("§7.9.2 parent_hash") naming the first invalid node.
 */
export async function verifyParentHashes(
  tree: RatchetTree,
  hash: Hash,
  code: ErrorCode = ErrorCode.InvalidWelcome,
): Promise<void> {
  checkUnmergedLeaves(tree, code);
  for (let p = 1; p < tree.length; p += 2) {
    const node = tree[p];
    if (node === undefined) continue;
    if (node.nodeType !== 2) throw new TypeError(`node ${p} holds a leaf node`);
    let valid = 0;
    for (const [c, s] of [
      [left(p), right(p)],
      [right(p), left(p)],
    ] as const) {
      const d = claimant(tree, node.parent, c);
      if (d === undefined) continue;
      const field = parentHashField(tree, d);
      if (field === undefined) continue;
      if (bytesEqual(field, await parentHashWithCopathChild(tree, node.parent, s, hash))) valid++;
    }
    if (valid !== 1)
      throw new MlsRuleError(code, PARENT_HASH_RULE, `parent node ${p} is not parent-hash valid`, {
        node: p,
      });
  }
}
