/**
 * RFC 9420 §7.8 tree hash:
 *
 *     struct { uint32 leaf_index; optional<LeafNode> leaf_node; } LeafNodeHashInput;
 *     struct { optional<ParentNode> parent_node; opaque left_hash<V>; opaque right_hash<V>; }
 *         ParentNodeHashInput;
 *     struct { NodeType node_type; select (node_type) { … } } TreeHashInput;
 *
 * Trees are immutable and share untouched node objects (tree.ts), so each hash is kept by what
 * it depends on, per hash function: a leaf's by its LeafNode object (and index), a parent's by
 * its ParentNode object and its children's hashes, a blank parent's by its children's hashes.
 * Hashing a tree made by one commit from the last then digests only the nodes the commit
 * changed; the rest are look-ups. With a synchronous digest (node:crypto) no promise is made.
 */
import { Writer } from "../codec/writer.js";
import type { LeafNode } from "../keypackage/types.js";
import { bytesEqual } from "../crypto/bytes.js";
import { syncDigestOf, type Hash } from "../crypto/types.js";
import { isLeaf, leafRange, leafToNode, left, right, root } from "./math.js";
import { encodedLeafNode, encodedParentNode } from "./nodeEncoding.js";
import { leafCount } from "./tree.js";
import type { ParentNode, RatchetTree, TreeNode } from "./types.js";

interface ParentEntry {
  readonly left: Uint8Array;
  readonly right: Uint8Array;
  readonly hash: Uint8Array;
}

/** Hashes already computed with one hash function. */
interface Memo {
  readonly leaves: WeakMap<LeafNode, { readonly index: number; readonly hash: Uint8Array }>;
  readonly parents: WeakMap<ParentNode, ParentEntry>;
  readonly blankLeaves: Map<number, Uint8Array>;
  readonly blankParents: WeakMap<Uint8Array, WeakMap<Uint8Array, Uint8Array>>;
}

const memos = new WeakMap<Hash, Memo>();
/** Every node's tree hash, per tree object and hash function. */
const perTree = new WeakMap<RatchetTree, WeakMap<Hash, readonly Uint8Array[]>>();

function memoOf(hash: Hash): Memo {
  let m = memos.get(hash);
  if (m === undefined) {
    m = {
      leaves: new WeakMap(),
      parents: new WeakMap(),
      blankLeaves: new Map(),
      blankParents: new WeakMap(),
    };
    memos.set(hash, m);
  }
  return m;
}

/** §7.8 TreeHashInput of a leaf position (the LeafNode's cached encoding copied in). */
function leafInput(leafIndex: number, leaf: LeafNode | undefined): Uint8Array {
  if (leaf === undefined) return new Writer(8).u8(1).u32(leafIndex).u8(0).finish();
  const body = encodedLeafNode(leaf);
  const out = new Uint8Array(6 + body.length);
  out[0] = 1; // node_type leaf
  out[1] = leafIndex >>> 24;
  out[2] = (leafIndex >>> 16) & 0xff;
  out[3] = (leafIndex >>> 8) & 0xff;
  out[4] = leafIndex & 0xff;
  out[5] = 1; // optional<LeafNode> present
  out.set(body, 6);
  return out;
}

/** §7.8 TreeHashInput of a parent position. */
function parentInput(p: ParentNode | undefined, l: Uint8Array, r: Uint8Array): Uint8Array {
  const body = p === undefined ? undefined : encodedParentNode(p);
  const w = new Writer(2 + (body?.length ?? 0) + l.length + r.length + 4).u8(2);
  if (body === undefined) w.u8(0);
  else w.u8(1).raw(body);
  return w.vec(l).vec(r).finish();
}

/**
 * One node's hash from its children's: a memo hit, or the input to digest and where to store
 * the result. Shared by the synchronous and asynchronous walks.
 */
type Step =
  { readonly hit: Uint8Array } | { readonly input: Uint8Array; readonly store: (h: Uint8Array) => void };

function leafStep(m: Memo, leafIndex: number, n: TreeNode | undefined): Step {
  if (n !== undefined && n.nodeType !== 1)
    throw new TypeError(`node ${leafToNode(leafIndex)} holds a parent node`);
  if (n === undefined) {
    const hit = m.blankLeaves.get(leafIndex);
    if (hit !== undefined) return { hit };
    return { input: leafInput(leafIndex, undefined), store: (h) => m.blankLeaves.set(leafIndex, h) };
  }
  const e = m.leaves.get(n.leaf);
  if (e !== undefined && e.index === leafIndex) return { hit: e.hash };
  return {
    input: leafInput(leafIndex, n.leaf),
    store: (h) => m.leaves.set(n.leaf, { index: leafIndex, hash: h }),
  };
}

function parentStep(m: Memo, x: number, n: TreeNode | undefined, l: Uint8Array, r: Uint8Array): Step {
  if (n !== undefined && n.nodeType !== 2) throw new TypeError(`node ${x} holds a leaf node`);
  if (n === undefined) {
    let byRight = m.blankParents.get(l);
    const hit = byRight?.get(r);
    if (hit !== undefined) return { hit };
    return {
      input: parentInput(undefined, l, r),
      store: (h) => {
        if (byRight === undefined) m.blankParents.set(l, (byRight = new WeakMap()));
        byRight.set(r, h);
      },
    };
  }
  const e = m.parents.get(n.parent);
  if (e !== undefined && sameHash(e.left, l) && sameHash(e.right, r)) return { hit: e.hash };
  return {
    input: parentInput(n.parent, l, r),
    store: (h) => m.parents.set(n.parent, { left: l, right: r, hash: h }),
  };
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || bytesEqual(a, b);
}

function walkSync(
  m: Memo,
  tree: RatchetTree,
  x: number,
  out: Uint8Array[],
  digest: (d: Uint8Array) => Uint8Array,
): Uint8Array {
  const step = isLeaf(x)
    ? leafStep(m, x / 2, tree[x])
    : parentStep(
        m,
        x,
        tree[x],
        walkSync(m, tree, left(x), out, digest),
        walkSync(m, tree, right(x), out, digest),
      );
  let h: Uint8Array;
  if ("hit" in step) h = step.hit;
  else {
    h = digest(step.input);
    step.store(h);
  }
  out[x] = h;
  return h;
}

async function walkAsync(
  m: Memo,
  tree: RatchetTree,
  x: number,
  out: Uint8Array[],
  hash: Hash,
): Promise<Uint8Array> {
  let step: Step;
  if (isLeaf(x)) step = leafStep(m, x / 2, tree[x]);
  else {
    const [l, r] = await Promise.all([
      walkAsync(m, tree, left(x), out, hash),
      walkAsync(m, tree, right(x), out, hash),
    ]);
    step = parentStep(m, x, tree[x], l, r);
  }
  let h: Uint8Array;
  if ("hit" in step) h = step.hit;
  else {
    h = await hash.digest(step.input);
    step.store(h);
  }
  out[x] = h;
  return h;
}

/**
 * §7.8 tree hash of every node of `tree` (by node index, full width): `treeHashes(t, h)[i]` is the
 * tree hash of the subtree rooted at node i. Computed once per tree object and hash function.
 */
export async function treeHashes(tree: RatchetTree, hash: Hash): Promise<readonly Uint8Array[]> {
  let byHash = perTree.get(tree);
  const known = byHash?.get(hash);
  if (known !== undefined) return known;
  const m = memoOf(hash);
  const out: Uint8Array[] = [];
  const r = root(leafCount(tree));
  const digest = syncDigestOf(hash);
  if (digest !== undefined) walkSync(m, tree, r, out, digest);
  else await walkAsync(m, tree, r, out, hash);
  if (byHash === undefined) perTree.set(tree, (byHash = new WeakMap()));
  byHash.set(hash, out);
  return out;
}

/** §7.8 the tree hash of the root: the `tree_hash` of the GroupContext. */
export async function treeHash(tree: RatchetTree, hash: Hash): Promise<Uint8Array> {
  return (await treeHashes(tree, hash))[root(leafCount(tree))] as Uint8Array;
}

/** §7.8 the tree hash of the subtree rooted at node `x`. */
export async function subtreeHash(tree: RatchetTree, x: number, hash: Hash): Promise<Uint8Array> {
  const h = (await treeHashes(tree, hash))[x];
  if (h === undefined) throw new RangeError(`node ${x} is outside the tree`);
  return h;
}

/**
 * §7.9 "original sibling tree hash": the tree hash of the subtree at `x` in the tree where every
 * leaf of `removed` (leaf indices) is blank and is dropped from every `unmerged_leaves` list.
 *
 * Only subtrees holding a removed leaf are recomputed: elsewhere no list can name one, because a
 * parent lists only leaves below it (the §7.9.1 unmerged-leaves rule, checked before this runs).
 */
export async function originalSubtreeHash(
  tree: RatchetTree,
  x: number,
  removed: readonly number[],
  hash: Hash,
): Promise<Uint8Array> {
  const base = await treeHashes(tree, hash);
  if (removed.length === 0) return base[x] as Uint8Array;
  const gone = new Set(removed);
  const m = memoOf(hash);
  const touched = (y: number): boolean => {
    const [lo, hi] = leafRange(y);
    for (const l of gone) if (l >= lo && l <= hi) return true;
    return false;
  };
  const visit = async (y: number): Promise<Uint8Array> => {
    if (!touched(y)) return base[y] as Uint8Array;
    let step: Step;
    if (isLeaf(y)) step = leafStep(m, y / 2, gone.has(y / 2) ? undefined : tree[y]);
    else {
      const l = await visit(left(y));
      const r = await visit(right(y));
      const n = tree[y];
      const kept: TreeNode | undefined =
        n?.nodeType === 2 && n.parent.unmergedLeaves.some((u) => gone.has(u))
          ? {
              nodeType: 2,
              parent: { ...n.parent, unmergedLeaves: n.parent.unmergedLeaves.filter((u) => !gone.has(u)) },
            }
          : n;
      step = parentStep(m, y, kept, l, r);
    }
    if ("hit" in step) return step.hit;
    const h = await hash.digest(step.input);
    step.store(h);
    return h;
  };
  return visit(x);
}
