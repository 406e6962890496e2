/**
 * Encodings of the ratchet tree's nodes (RFC 9420 §7.2 LeafNode, §7.1 ParentNode) kept per node
 * object, and of whole trees (§12.4.3.3 `optional<Node> ratchet_tree<V>`) per tree object.
 *
 * Nodes are immutable and trees made by a commit share the nodes it did not change (tree.ts),
 * so a node is encoded once: the tree hash (§7.8), the GroupInfo's ratchet_tree extension and
 * the stored state then copy bytes instead of re-encoding. A tree decoded from bytes remembers
 * each node's own bytes (our reader is strict — minimal varints, presence octets 0/1 — so they
 * are exactly the node's encoding).
 */
import { encode, Writer, type Reader } from "../codec/index.js";
import { writeLeafNode } from "../keypackage/codec.js";
import { LeafNodeSources, type LeafNode } from "../keypackage/types.js";
import { memo } from "../memo.js";
import { readRatchetTree, writeParentNode } from "./codec.js";
import type { ParentNode, RatchetTree, TreeNode } from "./types.js";

const leaves = new WeakMap<LeafNode, Uint8Array>();
const parents = new WeakMap<ParentNode, Uint8Array>();
const trees = new WeakMap<RatchetTree, Uint8Array>();

/** §7.2 the LeafNode's encoding (computed once per LeafNode object). */
export function encodedLeafNode(leaf: LeafNode): Uint8Array {
  return memo(leaves, leaf, (l) => encode(l, writeLeafNode, 512));
}

/** Bytes of the §2.1.2 varint length prefix of a vector of `n` bytes. */
function varintLength(n: number): number {
  return n < 0x40 ? 1 : n < 0x4000 ? 2 : 4;
}

/**
 * §7.2 LeafNodeTBS of `leaf` from its cached encoding: the LeafNode without its signature<V>,
 * then, for the update and commit sources, `opaque group_id<V>; uint32 leaf_index;` — the bytes
 * `writeLeafNodeTbs` writes.
 */
export function leafNodeTbs(
  leaf: LeafNode,
  ctx: { readonly groupId: Uint8Array; readonly leafIndex: number },
): Uint8Array {
  const body = encodedLeafNode(leaf);
  const sig = leaf.signature.length;
  const unsigned = body.subarray(0, body.length - varintLength(sig) - sig);
  if (leaf.leafNodeSource === LeafNodeSources.key_package) return unsigned;
  return new Writer(unsigned.length + ctx.groupId.length + 8)
    .raw(unsigned)
    .vec(ctx.groupId)
    .u32(ctx.leafIndex)
    .finish();
}

/** §7.1 the ParentNode's encoding (computed once per ParentNode object). */
export function encodedParentNode(parent: ParentNode): Uint8Array {
  return memo(parents, parent, (p) => encode(p, writeParentNode, 128));
}

/** The encoding of a node's body (after its NodeType). */
function encodedBody(n: TreeNode): Uint8Array {
  return n.nodeType === 1 ? encodedLeafNode(n.leaf) : encodedParentNode(n.parent);
}

/**
 * §12.4.3.3 `optional<Node> ratchet_tree<V>` of `tree`, truncated after its last non-blank node
 * (computed once per tree object; the same bytes as `writeRatchetTree`).
 */
export function encodedRatchetTree(tree: RatchetTree): Uint8Array {
  return memo(trees, tree, (t) => {
    let last = t.length - 1;
    while (last >= 0 && t[last] === undefined) last--;
    if (last < 0) throw new TypeError("a ratchet tree needs a non-blank node");
    const bodies: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(last + 1);
    let len = 0;
    for (let i = 0; i <= last; i++) {
      const n = t[i];
      if (n === undefined) len += 1;
      else {
        const b = encodedBody(n);
        bodies[i] = b;
        len += 2 + b.length;
      }
    }
    // §2.1.2: the vector's length as the shortest varint.
    const head = len < 0x40 ? 1 : len < 0x4000 ? 2 : 4;
    if (len > 0x3fffffff) throw new RangeError("ratchet tree too long");
    const out = new Uint8Array(head + len);
    if (head === 1) out[0] = len;
    else if (head === 2) {
      out[0] = 0x40 | (len >>> 8);
      out[1] = len & 0xff;
    } else {
      out[0] = 0x80 | (len >>> 24);
      out[1] = (len >>> 16) & 0xff;
      out[2] = (len >>> 8) & 0xff;
      out[3] = len & 0xff;
    }
    let at = head;
    for (let i = 0; i <= last; i++) {
      const n = t[i];
      if (n === undefined) out[at++] = 0;
      else {
        const b = bodies[i] as Uint8Array;
        out[at] = 1;
        out[at + 1] = n.nodeType;
        out.set(b, at + 2);
        at += 2 + b.length;
      }
    }
    return out;
  });
}

/** Writes `tree` as §12.4.3.3 `optional<Node> ratchet_tree<V>` from the cached encodings. */
export function writeEncodedRatchetTree(w: Writer, tree: RatchetTree): void {
  w.raw(encodedRatchetTree(tree));
}

/** Records `bytes` as the encoding of `tree` (a tree just decoded from exactly these bytes). */
export function rememberRatchetTreeEncoding(tree: RatchetTree, bytes: Uint8Array): void {
  trees.set(tree, bytes);
}

/** Records the bytes a node was decoded from (its body, after the NodeType octet). */
function rememberNode(n: TreeNode, body: Uint8Array): void {
  if (n.nodeType === 1) leaves.set(n.leaf, body);
  else parents.set(n.parent, body);
}

/**
 * `readRatchetTree` (§12.4.3.3, same checks) that also remembers the encoding of every node and
 * of the whole tree: views into the reader's bytes.
 */
export function readRatchetTreeRemembered(r: Reader): RatchetTree {
  const start = r.offset;
  const tree = readRatchetTree(r, rememberNode);
  trees.set(tree, r.bytes.subarray(start, r.offset));
  return tree;
}
