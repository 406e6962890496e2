/**
 * The unmerged-leaves rule a joiner checks on a ratchet tree (RFC 9420 §12.4.3.1, the
 * invariant §7.9.1's parent hashes rely on): for each non-blank parent P and each leaf L in
 * P.unmerged_leaves,
 *
 * - L is a non-blank leaf that is a descendant of P, and
 * - every non-blank intermediate node between L and P also lists L.
 *
 * Both conditions must hold (the old code joined them with `||`, accepting a tree where either
 * did). A list naming a leaf twice is refused as well.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { isInSubtree, leafToNode, parent } from "./math.js";
import { leafCount } from "./tree.js";
import type { RatchetTree } from "./types.js";

export const UNMERGED_LEAVES_RULE = "§7.9.1 unmerged_leaves";

/** Throws MlsRuleError("§7.9.1 unmerged_leaves") unless every parent's unmerged_leaves are valid. */
export function checkUnmergedLeaves(tree: RatchetTree, code: ErrorCode = ErrorCode.InvalidWelcome): void {
  const n = leafCount(tree);
  const fail = (p: number, l: number, why: string): never => {
    throw new MlsRuleError(code, UNMERGED_LEAVES_RULE, `parent ${p} lists leaf ${l} as unmerged, ${why}`, {
      node: p,
      leafIndex: l,
    });
  };
  for (let p = 1; p < tree.length; p += 2) {
    const node = tree[p];
    if (node?.nodeType !== 2) continue;
    const seen = new Set<number>();
    for (const l of node.parent.unmergedLeaves) {
      if (seen.has(l)) fail(p, l, "twice");
      seen.add(l);
      const x = leafToNode(l);
      // §12.4.3.1: the entry is a leaf below P …
      if (!Number.isInteger(l) || l < 0 || l >= n || !isInSubtree(x, p)) fail(p, l, "which is not below it");
      // … that is not blank …
      if (tree[x]?.nodeType !== 1) fail(p, l, "which is blank");
      // … and every non-blank node between them lists it too.
      for (let y = parent(x, n); y !== p; y = parent(y, n)) {
        const mid = tree[y];
        if (mid !== undefined && (mid.nodeType !== 2 || !mid.parent.unmergedLeaves.includes(l)))
          fail(p, l, `but node ${y} between them does not`);
      }
    }
  }
}
