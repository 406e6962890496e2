/** RFC 9420 §7.1 ParentNode and the ratchet tree's nodes (§12.4.3.3 `Node`). */
import type { LeafNode } from "../keypackage/types.js";

/** §7.1 ParentNode. `unmergedLeaves` are leaf indices, ascending. */
export interface ParentNode {
  readonly encryptionKey: Uint8Array;
  readonly parentHash: Uint8Array;
  readonly unmergedLeaves: readonly number[];
}

/** §12.4.3.3 NodeType. */
export const NodeTypes = { leaf: 1, parent: 2 } as const;

export type TreeNode =
  { readonly nodeType: 1; readonly leaf: LeafNode } | { readonly nodeType: 2; readonly parent: ParentNode };

/**
 * The ratchet tree as an array in node-index order (§4.1 / Appendix C: leaves at even
 * indices); `undefined` is a blank node. `readRatchetTree` returns it at full width 2^(d+1)−1
 * (§12.4.3.3: the received list, whose last node is non-blank, padded with blanks);
 * `writeRatchetTree` drops the trailing blanks again.
 */
export type RatchetTree = readonly (TreeNode | undefined)[];
