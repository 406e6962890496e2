/**
 * TLS codecs (RFC 9420 §2.1) of the ratchet tree's nodes:
 *
 * - §7.1 `ParentNode { HPKEPublicKey encryption_key; opaque parent_hash<V>; uint32 unmerged_leaves<V>; }`
 * - §12.4.3.3 `Node { NodeType node_type; select { leaf: LeafNode; parent: ParentNode } }`
 * - §12.4.3.3 `optional<Node> ratchet_tree<V>`, the value of the ratchet_tree extension.
 *
 * Ratchet tree (§12.4.3.3): the sender "MUST NOT include blank nodes after the last non-blank
 * node"; the receiver "MUST check that the last node in ratchet_tree is non-blank, and then
 * extend the tree to the right until it has a length of the form 2^(d+1)-1, adding the minimum
 * number of blank values possible". So `readRatchetTree` refuses an empty list or one ending in a
 * blank, and returns the list padded with `undefined` to the smallest full width 2^(d+1)-1 ≥ its
 * length; `writeRatchetTree` takes any width and writes the list truncated after its last
 * non-blank node. The decoder checks syntax only: which node type sits at which index (leaves at
 * even indices) and everything else of §7.9 / §12.4.3.1 is the tree's validation.
 */
import { DecodeError, type Reader, type Writer } from "../codec/index.js";
import { readLeafNode, writeLeafNode } from "../keypackage/codec.js";
import { NodeTypes, type ParentNode, type RatchetTree, type TreeNode } from "./types.js";

const readU32 = (r: Reader): number => r.u32();
const writeU32 = (w: Writer, v: number): void => {
  w.u32(v);
};

/** §7.1 ParentNode. */
export function writeParentNode(w: Writer, p: ParentNode): void {
  w.vec(p.encryptionKey).vec(p.parentHash).vecOf(p.unmergedLeaves, writeU32);
}

/** §7.1 ParentNode (order of unmerged_leaves is not checked here). */
export function readParentNode(r: Reader): ParentNode {
  const encryptionKey = r.vec();
  const parentHash = r.vec();
  const unmergedLeaves = r.vecOf(readU32);
  return { encryptionKey, parentHash, unmergedLeaves };
}

/** §12.4.3.3 Node. */
export function writeTreeNode(w: Writer, n: TreeNode): void {
  w.u8(n.nodeType);
  if (n.nodeType === NodeTypes.leaf) writeLeafNode(w, n.leaf);
  else if (n.nodeType === NodeTypes.parent) writeParentNode(w, n.parent);
  else throw new TypeError(`unknown node type ${(n as { nodeType: unknown }).nodeType}`);
}

/** §12.4.3.3 Node. */
export function readTreeNode(r: Reader): TreeNode {
  const nodeType = r.u8();
  if (nodeType === NodeTypes.leaf) return { nodeType, leaf: readLeafNode(r) };
  if (nodeType === NodeTypes.parent) return { nodeType, parent: readParentNode(r) };
  // §2.1: a NodeType with no case in the select cannot be skipped.
  throw new DecodeError("§2.1 unknown enum value", `node type ${nodeType}`);
}

/** Smallest full tree width 2^(d+1)-1 holding `n` ≥ 1 nodes (§12.4.3.3). */
function fullWidth(n: number): number {
  let w = 1;
  while (w < n) w = 2 * w + 1;
  return w;
}

/**
 * §12.4.3.3 `optional<Node> ratchet_tree<V>`, truncated after the last non-blank node.
 * A tree with no non-blank node has no encoding (TypeError).
 */
export function writeRatchetTree(w: Writer, tree: RatchetTree): void {
  let last = tree.length - 1;
  while (last >= 0 && tree[last] === undefined) last--;
  if (last < 0) throw new TypeError("a ratchet tree needs a non-blank node");
  w.vecWith((v) => {
    for (let i = 0; i <= last; i++) {
      const n = tree[i];
      if (n === undefined) v.u8(0);
      else {
        v.u8(1);
        writeTreeNode(v, n);
      }
    }
  });
}

/**
 * §12.4.3.3 `optional<Node> ratchet_tree<V>`: refuses a list whose last node is blank (or an
 * empty one), and returns it padded with blanks to the smallest width 2^(d+1)-1. `onNode`, when
 * given, sees each node with the bytes of its body (after the NodeType octet), a view.
 */
export function readRatchetTree(r: Reader, onNode?: (node: TreeNode, body: Uint8Array) => void): RatchetTree {
  const nodes = r.vecOf((r2): TreeNode | undefined =>
    r2.optional((r3) => {
      const start = r3.offset + 1;
      const node = readTreeNode(r3);
      onNode?.(node, r3.bytes.subarray(start, r3.offset));
      return node;
    }),
  );
  // §12.4.3.3: "The receiver MUST check that the last node in ratchet_tree is non-blank".
  if (nodes.length === 0 || nodes[nodes.length - 1] === undefined)
    throw new DecodeError("§12.4.3.3 last node blank", "the ratchet tree is empty or ends with a blank node");
  // §12.4.3.3: extend to the right to a length 2^(d+1)-1 with the fewest blanks.
  const width = fullWidth(nodes.length);
  while (nodes.length < width) nodes.push(undefined);
  return nodes;
}
