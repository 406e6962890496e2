/**
 * RFC 9420 §7.5 / §12.4.2 merging an UpdatePath into the tree: blank every node of the sender's
 * direct path, then set each node of its filtered direct path to the path's key with the
 * parent hash of §7.9 and no unmerged leaves, and set the sender's leaf.
 */
import type { LeafNode } from "../keypackage/types.js";
import { directPath, leafToNode } from "../tree/math.js";
import { leafCount, withNodes, type PathStep } from "../tree/tree.js";
import type { RatchetTree, TreeNode } from "../tree/types.js";

export function mergeUpdatePath(
  tree: RatchetTree,
  senderLeafIndex: number,
  leaf: LeafNode,
  steps: readonly PathStep[],
  keys: readonly Uint8Array[],
  parentHashes: readonly Uint8Array[],
): RatchetTree {
  const x = leafToNode(senderLeafIndex);
  const changes = new Map<number, TreeNode | undefined>();
  for (const p of directPath(x, leafCount(tree))) changes.set(p, undefined);
  steps.forEach((s, i) => {
    changes.set(s.node, {
      nodeType: 2,
      parent: {
        encryptionKey: keys[i] as Uint8Array,
        parentHash: parentHashes[i] as Uint8Array,
        unmergedLeaves: [],
      },
    });
  });
  changes.set(x, { nodeType: 1, leaf });
  return withNodes(tree, changes);
}
