/**
 * Tree operations (RFC 9420 §4.1, §7.7, §12.1) and the tree hash cache (§7.8) of src/mls/tree,
 * on hand-made trees whose nodes only need to be distinct objects.
 */
import { describe, expect, test } from "vitest";
import type { Hash } from "../../../src/mls/crypto/types.js";
import type { LeafNode } from "../../../src/mls/keypackage/types.js";
import { treeHash, treeHashes } from "../../../src/mls/tree/hash.js";
import {
  addLeaf,
  extend,
  filteredDirectPath,
  leafCount,
  members,
  nextLeafIndex,
  removeLeaf,
  resolution,
  toFullWidth,
  truncate,
  updateLeaf,
  withNodes,
} from "../../../src/mls/tree/tree.js";
import type { ParentNode, RatchetTree, TreeNode } from "../../../src/mls/tree/types.js";
import { suite } from "./fixtures.js";

function leaf(tag: number): LeafNode {
  return {
    encryptionKey: Uint8Array.of(tag),
    signatureKey: Uint8Array.of(tag, tag),
    credential: { credentialType: 1, identity: Uint8Array.of(tag) },
    capabilities: { versions: [1], ciphersuites: [1], extensions: [], proposals: [], credentials: [1] },
    leafNodeSource: 2,
    lifetime: undefined,
    parentHash: undefined,
    extensions: [],
    signature: Uint8Array.of(0),
  };
}

function parent(tag: number, unmergedLeaves: number[] = []): TreeNode {
  const p: ParentNode = {
    encryptionKey: Uint8Array.of(0x80 | tag),
    parentHash: new Uint8Array(0),
    unmergedLeaves,
  };
  return { nodeType: 2, parent: p };
}

const L = (tag: number): TreeNode => ({ nodeType: 1, leaf: leaf(tag) });

/** 4 leaves: 0, 1, _, 3; parents 1 and 3 set, 5 blank. */
function sample(): RatchetTree {
  return [L(0), parent(1), L(1), parent(3), undefined, undefined, L(3)];
}

describe("§4.1.1 resolution and §4.1.2 filtered direct path", () => {
  test("blank parents resolve to their children, parents list their unmerged leaves", () => {
    const t = withNodes(sample(), [[3, parent(3, [3])]]);
    expect(resolution(t, 3)).toEqual([3, 6]);
    expect(resolution(t, 5)).toEqual([6]);
    expect(resolution(t, 4)).toEqual([]);
    expect(resolution(t, 1)).toEqual([1]);
  });

  test("nodes whose copath child resolves to nothing are skipped", () => {
    const t: RatchetTree = [L(0), undefined, undefined, undefined, undefined, undefined, undefined];
    expect(filteredDirectPath(t, 0)).toEqual([]);
    expect(filteredDirectPath(sample(), 0)).toEqual([1, 3]);
    expect(filteredDirectPath(withNodes(sample(), [[6, undefined]]), 0)).toEqual([1]);
  });
});

describe("§7.7 add, remove, update, truncate", () => {
  test("add takes the leftmost blank leaf and marks it unmerged in non-blank parents (ascending)", () => {
    const t = withNodes(sample(), [[3, parent(3, [3])]]);
    const { tree, leafIndex } = addLeaf(t, leaf(2));
    expect(leafIndex).toBe(2);
    expect(tree[4]).toEqual(L(2));
    expect(tree[5]).toBeUndefined();
    expect((tree[3] as { parent: ParentNode }).parent.unmergedLeaves).toEqual([2, 3]);
    expect(tree[1]).toBe(t[1]); // untouched nodes are shared
    expect(t[4]).toBeUndefined(); // the input is unchanged
  });

  test("add extends a full tree to the right", () => {
    const full = addLeaf(sample(), leaf(2)).tree;
    expect(nextLeafIndex(full)).toBe(4);
    const { tree, leafIndex } = addLeaf(full, leaf(4));
    expect(leafIndex).toBe(4);
    expect(tree).toHaveLength(15);
    expect(leafCount(tree)).toBe(8);
    expect(tree[7]).toBeUndefined(); // the new root is blank
    const one = addLeaf([L(0)], leaf(1));
    expect(one.tree).toHaveLength(3);
    expect(one.leafIndex).toBe(1);
  });

  test("remove blanks the leaf and its direct path and truncates", () => {
    const t = addLeaf(addLeaf(sample(), leaf(2)).tree, leaf(4)).tree;
    const r = removeLeaf(t, 4);
    expect(r).toHaveLength(7);
    expect(r[3]).toBe(t[3]); // not on leaf 4's direct path
    expect(r[1]).toBe(t[1]);
    const r2 = removeLeaf(removeLeaf(sample(), 3), 1);
    expect(r2).toEqual([L(0)]);
    expect(members(r2)).toHaveLength(1);
  });

  test("truncate keeps the smallest power of two above the rightmost non-blank leaf", () => {
    expect(truncate(withNodes(extend(sample()), [[10, L(5)]]))).toHaveLength(15);
    expect(truncate(extend(sample()))).toHaveLength(7);
    expect(truncate(extend(extend(withNodes(sample(), [[6, undefined]]))))).toHaveLength(3);
  });

  test("update replaces the leaf and blanks its direct path", () => {
    const u = updateLeaf(sample(), 1, leaf(9));
    expect(u[2]).toEqual(L(9));
    expect(u[1]).toBeUndefined();
    expect(u[3]).toBeUndefined();
  });

  test("a truncated tree is read as its full width", () => {
    const t: RatchetTree = [L(0), parent(1), L(1), parent(3), L(2)];
    expect(leafCount(t)).toBe(4);
    expect(toFullWidth(t)).toHaveLength(7);
    expect(resolution(t, 5)).toEqual([4]);
  });

  test("withNodes refuses a node of the wrong type at an index", () => {
    expect(() => withNodes(sample(), [[2, parent(2)]])).toThrow(TypeError);
  });
});

/** A Hash that counts its digests (async only, or with a counting digestSync too). */
function counting(inner: Hash, sync: boolean): Hash & { count: number } {
  const h = {
    count: 0,
    digest: (d: Uint8Array) => {
      h.count++;
      return inner.digest(d);
    },
    mac: inner.mac.bind(inner),
    verifyMac: inner.verifyMac.bind(inner),
  };
  if (!sync) return h;
  const ds = (inner as Hash & { digestSync(d: Uint8Array): Uint8Array }).digestSync.bind(inner);
  return Object.assign(h, {
    digestSync: (d: Uint8Array) => {
      h.count++;
      return ds(d);
    },
  });
}

describe("§7.8 tree hash cache", () => {
  test.each([true, false])("a derived tree digests only what changed (sync digest: %s)", async (sync) => {
    const cs = await suite();
    const h = counting(cs.hash, sync);
    const t = toFullWidth(addLeaf(sample(), leaf(2)).tree);
    const first = await treeHash(t, h);
    expect(h.count).toBe(7);
    expect(await treeHash(t, h)).toBe(first);
    expect(h.count).toBe(7);
    // Same nodes in a new array: all look-ups.
    const copy = [...t];
    expect(await treeHash(copy, h)).toEqual(first);
    expect(h.count).toBe(7);
    // Updating leaf 3: its leaf, and parents 5 (blanked) and 3 (blanked) change.
    const u = updateLeaf(t, 3, leaf(7));
    await treeHash(u, h);
    expect(h.count).toBe(7 + 3);
    // Same results with and without the cache.
    const fresh = counting(cs.hash, sync);
    expect(await treeHashes(u, fresh)).toEqual(await treeHashes(u, h));
  });
});
