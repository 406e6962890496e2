/**
 * Immutable operations on the ratchet tree (RFC 9420 §4.1, §7.7): every change returns a new
 * array and new node objects for the nodes it changes; untouched nodes are shared (the tree hash
 * cache of hash.ts relies on it).
 *
 * A `RatchetTree` may arrive truncated (§12.4.3.3 omits trailing blank nodes): every reader here
 * treats indices past the end as blank and `leafCount` rounds the width up to a full tree, and
 * every operation returns a full-width tree (2^k leaves, 2^(k+1) − 1 nodes).
 */
import type { LeafNode } from "../keypackage/types.js";
import {
  directPath,
  isLeaf,
  leafCountForWidth,
  leafToNode,
  left,
  nodeWidth,
  parent,
  right,
  root,
  sibling,
} from "./math.js";
import type { ParentNode, RatchetTree, TreeNode } from "./types.js";

/** Number of leaves of the (full-width) tree: a power of two. */
export function leafCount(tree: RatchetTree): number {
  return leafCountForWidth(Math.max(tree.length, 1));
}

/** The root's node index. */
export function rootIndex(tree: RatchetTree): number {
  return root(leafCount(tree));
}

/** The node at `x`, `undefined` when blank (or past a truncated end). */
export function nodeAt(tree: RatchetTree, x: number): TreeNode | undefined {
  return tree[x];
}

/** The LeafNode of leaf `leafIndex`, `undefined` when blank. */
export function getLeaf(tree: RatchetTree, leafIndex: number): LeafNode | undefined {
  const n = tree[leafToNode(leafIndex)];
  if (n === undefined) return undefined;
  if (n.nodeType !== 1) throw new TypeError(`node ${leafToNode(leafIndex)} holds a parent node`);
  return n.leaf;
}

/** The ParentNode at odd index `x`, `undefined` when blank. */
export function getParentNode(tree: RatchetTree, x: number): ParentNode | undefined {
  const n = tree[x];
  if (n === undefined) return undefined;
  if (n.nodeType !== 2) throw new TypeError(`node ${x} holds a leaf node`);
  return n.parent;
}

/** The encryption key of a non-blank node. */
export function encryptionKeyOf(node: TreeNode): Uint8Array {
  return node.nodeType === 1 ? node.leaf.encryptionKey : node.parent.encryptionKey;
}

/**
 * §4.1.1 resolution of node `x`: a non-blank node and its unmerged leaves; nothing for a blank
 * leaf; the resolutions of both children for a blank parent. Node indices, left to right.
 */
export function resolution(tree: RatchetTree, x: number): number[] {
  const out: number[] = [];
  collectResolution(tree, x, out);
  return out;
}

function collectResolution(tree: RatchetTree, x: number, out: number[]): void {
  const n = tree[x];
  if (n !== undefined) {
    out.push(x);
    if (n.nodeType === 2) for (const l of n.parent.unmergedLeaves) out.push(leafToNode(l));
    return;
  }
  if (isLeaf(x)) return;
  collectResolution(tree, left(x), out);
  collectResolution(tree, right(x), out);
}

/** True when the resolution of `x` is empty (every node of its subtree is blank). */
export function isBlankSubtree(tree: RatchetTree, x: number): boolean {
  if (tree[x] !== undefined) return false;
  if (isLeaf(x)) return true;
  return isBlankSubtree(tree, left(x)) && isBlankSubtree(tree, right(x));
}

/** A node of a filtered direct path with the copath child whose resolution it encrypts to. */
export interface PathStep {
  readonly node: number;
  readonly copathChild: number;
}

/**
 * §4.1.2 filtered direct path of leaf `leafIndex`, with each node's copath child: the direct
 * path without the nodes whose copath child has an empty resolution (unmerged leaves count).
 */
export function filteredDirectPathSteps(tree: RatchetTree, leafIndex: number): PathStep[] {
  const n = leafCount(tree);
  const steps: PathStep[] = [];
  let child = leafToNode(leafIndex);
  for (const p of directPath(child, n)) {
    const copathChild = sibling(child, n);
    if (!isBlankSubtree(tree, copathChild)) steps.push({ node: p, copathChild });
    child = p;
  }
  return steps;
}

/** §4.1.2 filtered direct path (node indices). */
export function filteredDirectPath(tree: RatchetTree, leafIndex: number): number[] {
  return filteredDirectPathSteps(tree, leafIndex).map((s) => s.node);
}

/** The non-blank leaves: the group's members, by leaf index. */
export function members(tree: RatchetTree): { readonly leafIndex: number; readonly leaf: LeafNode }[] {
  const out: { leafIndex: number; leaf: LeafNode }[] = [];
  for (let x = 0; x < tree.length; x += 2) {
    const n = tree[x];
    if (n?.nodeType === 1) out.push({ leafIndex: x / 2, leaf: n.leaf });
  }
  return out;
}

/** A mutable full-width copy of `tree`, `leaves` leaves wide (padding or cutting blank tail). */
function copyWithLeaves(tree: RatchetTree, leaves: number): (TreeNode | undefined)[] {
  const width = nodeWidth(leaves);
  const out = tree.slice(0, width);
  while (out.length < width) out.push(undefined);
  return out;
}

/** The tree padded with blank nodes to its full width (§12.4.3.3 "extend the tree to the right"). */
export function toFullWidth(tree: RatchetTree): RatchetTree {
  const width = nodeWidth(leafCount(tree));
  return tree.length === width ? tree : copyWithLeaves(tree, leafCount(tree));
}

/** §7.7 extend: doubles the number of leaves (new right half blank). */
export function extend(tree: RatchetTree): RatchetTree {
  return copyWithLeaves(tree, leafCount(tree) * 2);
}

/**
 * §7.7 truncate: "removing the right subtree until there is at least one non-blank leaf node in
 * the right subtree", i.e. to 2^d leaves for the smallest 2^d above the rightmost non-blank leaf.
 * A tree of one leaf stays as it is.
 */
export function truncate(tree: RatchetTree): RatchetTree {
  let last = leafCount(tree) - 1;
  while (last > 0 && tree[leafToNode(last)] === undefined) last--;
  let n = 1;
  while (n <= last) n *= 2;
  return copyWithLeaves(tree, n);
}

/** Blanks the direct path of leaf `leafIndex` (its parents up to the root) in `out`. */
function blankDirectPathIn(out: (TreeNode | undefined)[], leafIndex: number, leaves: number): void {
  for (const p of directPath(leafToNode(leafIndex), leaves)) out[p] = undefined;
}

/** Blanks the direct path of leaf `leafIndex` (§7.7, §12.1.2, §12.1.3). */
export function blankPath(tree: RatchetTree, leafIndex: number): RatchetTree {
  const leaves = leafCount(tree);
  checkLeafIndex(leafIndex, leaves);
  const out = copyWithLeaves(tree, leaves);
  blankDirectPathIn(out, leafIndex, leaves);
  return out;
}

function checkLeafIndex(leafIndex: number, leaves: number): void {
  if (!Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex >= leaves)
    throw new RangeError(`leaf index ${leafIndex} outside a tree of ${leaves} leaves`);
}

/** Inserts `leafIndex` into an ascending list of unmerged leaves. */
function withUnmerged(p: ParentNode, leafIndex: number): ParentNode {
  const list = p.unmergedLeaves.filter((l) => l !== leafIndex);
  let at = list.length;
  while (at > 0 && (list[at - 1] as number) > leafIndex) at--;
  list.splice(at, 0, leafIndex);
  return { encryptionKey: p.encryptionKey, parentHash: p.parentHash, unmergedLeaves: list };
}

/** The index the next Add takes (§7.7): the leftmost blank leaf, or the first leaf past the end. */
export function nextLeafIndex(tree: RatchetTree): number {
  const leaves = leafCount(tree);
  for (let i = 0; i < leaves; i++) if (tree[leafToNode(i)] === undefined) return i;
  return leaves;
}

/**
 * §7.7 / §12.1.1 Add: the new leaf goes into the leftmost blank leaf, or the tree is extended
 * first; every non-blank parent on its direct path lists it in `unmerged_leaves`.
 */
export function addLeaf(tree: RatchetTree, leaf: LeafNode): { tree: RatchetTree; leafIndex: number } {
  const leafIndex = nextLeafIndex(tree);
  let leaves = leafCount(tree);
  if (leafIndex >= leaves) leaves *= 2;
  const out = copyWithLeaves(tree, leaves);
  const x = leafToNode(leafIndex);
  out[x] = { nodeType: 1, leaf };
  for (const p of directPath(x, leaves)) {
    const n = out[p];
    if (n?.nodeType === 2) out[p] = { nodeType: 2, parent: withUnmerged(n.parent, leafIndex) };
  }
  return { tree: out, leafIndex };
}

/**
 * §12.1.3 Remove: blanks the leaf and its direct path, then truncates the tree (§7.7).
 */
export function removeLeaf(tree: RatchetTree, leafIndex: number): RatchetTree {
  const leaves = leafCount(tree);
  checkLeafIndex(leafIndex, leaves);
  const out = copyWithLeaves(tree, leaves);
  out[leafToNode(leafIndex)] = undefined;
  blankDirectPathIn(out, leafIndex, leaves);
  return truncate(out);
}

/** §12.1.2 Update: replaces the leaf and blanks its direct path. */
export function updateLeaf(tree: RatchetTree, leafIndex: number, leaf: LeafNode): RatchetTree {
  const leaves = leafCount(tree);
  checkLeafIndex(leafIndex, leaves);
  const out = copyWithLeaves(tree, leaves);
  out[leafToNode(leafIndex)] = { nodeType: 1, leaf };
  blankDirectPathIn(out, leafIndex, leaves);
  return out;
}

/** A copy of `tree` (full width) with the given nodes replaced. */
export function withNodes(
  tree: RatchetTree,
  changes: Iterable<readonly [number, TreeNode | undefined]>,
): RatchetTree {
  const leaves = leafCount(tree);
  const out = copyWithLeaves(tree, leaves);
  for (const [x, node] of changes) {
    if (x < 0 || x >= out.length) throw new RangeError(`node ${x} outside a tree of ${out.length} nodes`);
    if (node !== undefined && (node.nodeType === 1) !== isLeaf(x))
      throw new TypeError(`a ${node.nodeType === 1 ? "leaf" : "parent"} node cannot go at index ${x}`);
    out[x] = node;
  }
  return out;
}

/** The parent of `x` in this tree (undefined for the root). */
export function parentOf(tree: RatchetTree, x: number): number | undefined {
  const n = leafCount(tree);
  return x === root(n) ? undefined : parent(x, n);
}
