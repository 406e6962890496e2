/** RFC 9420 Appendix C tree math against tree-math.json (every vector through src/mls/tree/math.ts). */
import { describe, expect, test } from "vitest";
import {
  commonAncestor,
  copath,
  directPath,
  isInSubtree,
  leafCountForWidth,
  leafRange,
  left,
  level,
  log2,
  nodeWidth,
  parent,
  right,
  root,
  sibling,
} from "../../../src/mls/tree/math.js";
import { cases, loadVectors, reportMissing } from "../../vectors/helpers.js";

interface TreeMathVector {
  n_leaves: number;
  n_nodes: number;
  root: number;
  left: (number | null)[];
  right: (number | null)[];
  parent: (number | null)[];
  sibling: (number | null)[];
}

const FILE = "tree-math.json";
const vectors = loadVectors<TreeMathVector>(FILE);
reportMissing(FILE, vectors);

const orNull = (f: () => number): number | null => {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
};

describe.skipIf(vectors === undefined)("tree-math vectors", () => {
  test.each(cases(vectors))("%s", (_label, v) => {
    const n = v.n_leaves;
    expect(nodeWidth(n)).toBe(v.n_nodes);
    expect(root(n)).toBe(v.root);
    for (let i = 0; i < v.n_nodes; i++) {
      expect(
        orNull(() => left(i)),
        `left(${i})`,
      ).toBe(v.left[i]);
      expect(
        orNull(() => right(i)),
        `right(${i})`,
      ).toBe(v.right[i]);
      expect(
        orNull(() => parent(i, n)),
        `parent(${i})`,
      ).toBe(v.parent[i]);
      expect(
        orNull(() => sibling(i, n)),
        `sibling(${i})`,
      ).toBe(v.sibling[i]);
    }
  });
});

describe("tree math (Appendix C)", () => {
  test("log2 and level", () => {
    expect([0, 1, 2, 3, 4, 7, 8].map(log2)).toEqual([0, 0, 1, 1, 2, 2, 3]);
    expect([0, 1, 3, 5, 7, 11, 15].map(level)).toEqual([0, 1, 2, 1, 3, 2, 4]);
  });

  test("direct path, copath and common ancestor in an 8-leaf tree", () => {
    expect(directPath(0, 8)).toEqual([1, 3, 7]);
    expect(copath(0, 8)).toEqual([2, 5, 11]);
    expect(directPath(7, 8)).toEqual([]);
    expect(copath(7, 8)).toEqual([]);
    expect(directPath(10, 8)).toEqual([9, 11, 7]);
    expect(commonAncestor(0, 2)).toBe(1);
    expect(commonAncestor(0, 14)).toBe(7);
    expect(commonAncestor(8, 14)).toBe(11);
    expect(commonAncestor(5, 6)).toBe(5);
    expect(commonAncestor(4, 4)).toBe(4);
    for (let x = 0; x < 15; x += 2)
      for (let y = 0; y < 15; y += 2) {
        if (x === y) continue;
        const a = commonAncestor(x, y);
        expect(directPath(x, 8)).toContain(a);
        expect(directPath(y, 8)).toContain(a);
        expect(isInSubtree(x, a) && isInSubtree(y, a)).toBe(true);
        expect(isInSubtree(x, left(a)) !== isInSubtree(y, left(a))).toBe(true);
      }
  });

  test("leaf ranges and widths", () => {
    expect(leafRange(7)).toEqual([0, 7]);
    expect(leafRange(3)).toEqual([0, 3]);
    expect(leafRange(9)).toEqual([4, 5]);
    expect(leafRange(6)).toEqual([3, 3]);
    expect([1, 2, 3, 4, 5, 7, 8].map(leafCountForWidth)).toEqual([1, 2, 2, 4, 4, 4, 8]);
    expect(() => parent(3, 4)).toThrow(RangeError);
    expect(() => left(4)).toThrow(RangeError);
  });
});
