/**
 * Array-based tree math of RFC 9420 Appendix C (and the §4.1 terms: direct path, copath).
 *
 * Node indices: leaves at even indices (leaf `i` is node `2i`), parents at odd ones; a node's
 * level is the number of trailing 1 bits of its index. `n` is a number of leaves; the trees of
 * the engine always have a power-of-two number of leaves (§7.7), but these functions follow
 * Appendix C for any `n ≥ 1`. Indices stay below 2^31 (leaf counts ≤ 2^30), so 32-bit bitwise
 * operators are exact.
 */

/** Largest leaf count handled (2^30 leaves: 2^31 − 1 nodes). */
export const MAX_LEAVES = 2 ** 30;

function checkIndex(x: number): void {
  if (!Number.isInteger(x) || x < 0 || x >= 2 * MAX_LEAVES)
    throw new RangeError(`node index out of range: ${x}`);
}

function checkLeaves(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_LEAVES) throw new RangeError(`leaf count out of range: ${n}`);
}

/** Appendix C `log2`: floor(log2(x)), with log2(0) = 0. */
export function log2(x: number): number {
  return x === 0 ? 0 : 31 - Math.clz32(x);
}

/** Appendix C `level`: 0 for leaves, k for a parent whose subtree has 2^k leaves. */
export function level(x: number): number {
  if ((x & 1) === 0) return 0;
  let k = 0;
  while (((x >> k) & 1) === 1) k++;
  return k;
}

/** True for a leaf's node index (§4.1: leaves at even indices). */
export function isLeaf(x: number): boolean {
  return (x & 1) === 0;
}

/** Node index of leaf `leafIndex` (Appendix C: 2i). */
export function leafToNode(leafIndex: number): number {
  return leafIndex * 2;
}

/** Leaf index of a leaf's node index. */
export function nodeToLeaf(x: number): number {
  if (!isLeaf(x)) throw new RangeError(`node ${x} is not a leaf`);
  return x / 2;
}

/** Appendix C `node_width`: number of nodes of a tree with `n` leaves. */
export function nodeWidth(n: number): number {
  return n === 0 ? 0 : 2 * (n - 1) + 1;
}

/** Appendix C `root`. */
export function root(n: number): number {
  checkLeaves(n);
  return (1 << log2(nodeWidth(n))) - 1;
}

/** Appendix C `left`: the left child of a parent node. */
export function left(x: number): number {
  const k = level(x);
  if (k === 0) throw new RangeError(`leaf ${x} has no children`);
  return x ^ (1 << (k - 1));
}

/** Appendix C `right`: the right child of a parent node. */
export function right(x: number): number {
  const k = level(x);
  if (k === 0) throw new RangeError(`leaf ${x} has no children`);
  return x ^ (3 << (k - 1));
}

/** Appendix C `parent` in a tree of `n` leaves (not defined for the root). */
export function parent(x: number, n: number): number {
  checkIndex(x);
  if (x === root(n)) throw new RangeError(`the root ${x} has no parent`);
  const k = level(x);
  const b = (x >> (k + 1)) & 1;
  return (x | (1 << k)) ^ (b << (k + 1));
}

/** Appendix C `sibling`: the other child of `x`'s parent. */
export function sibling(x: number, n: number): number {
  const p = parent(x, n);
  return x < p ? right(p) : left(p);
}

/** §4.1 / Appendix C `direct_path`: the parents of `x` up to and including the root. */
export function directPath(x: number, n: number): number[] {
  const r = root(n);
  const path: number[] = [];
  while (x !== r) {
    x = parent(x, n);
    path.push(x);
  }
  return path;
}

/** §4.1 / Appendix C `copath`: the siblings of `x` and of each node of its direct path but the root. */
export function copath(x: number, n: number): number[] {
  const r = root(n);
  const out: number[] = [];
  while (x !== r) {
    out.push(sibling(x, n));
    x = parent(x, n);
  }
  return out;
}

/** Appendix C `common_ancestor_direct`: the lowest common ancestor of two nodes. */
export function commonAncestor(x: number, y: number): number {
  checkIndex(x);
  checkIndex(y);
  const lx = level(x) + 1;
  const ly = level(y) + 1;
  if (lx <= ly && x >>> ly === y >>> ly) return y;
  if (ly <= lx && x >>> lx === y >>> lx) return x;
  let xn = x;
  let yn = y;
  let k = 0;
  while (xn !== yn) {
    xn >>>= 1;
    yn >>>= 1;
    k++;
  }
  return (xn << k) + (1 << (k - 1)) - 1;
}

/** The leaf indices under node `x`: [first, last] (§4.1 subtree). */
export function leafRange(x: number): readonly [number, number] {
  const half = (1 << level(x)) - 1;
  return [(x - half) / 2, (x + half) / 2];
}

/** True when `d` is `a` or below it. */
export function isInSubtree(d: number, a: number): boolean {
  const half = (1 << level(a)) - 1;
  return d >= a - half && d <= a + half;
}

/** The smallest power-of-two leaf count whose tree has at least `width` nodes (§12.4.3.3 extension). */
export function leafCountForWidth(width: number): number {
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`tree width out of range: ${width}`);
  let n = 1;
  while (nodeWidth(n) < width) {
    n *= 2;
    if (n > MAX_LEAVES) throw new RangeError(`tree width too large: ${width}`);
  }
  return n;
}
