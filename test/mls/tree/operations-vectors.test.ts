/** tree-operations.json through src/mls/tree: Add / Update / Remove (§7.7, §12.1) and tree hashes (§7.8). */
import { expect } from "vitest";
import { decodeExact, encode } from "../../../src/mls/codec/index.js";
import { readProposal } from "../../../src/mls/framing/codec.js";
import { readRatchetTree, writeRatchetTree } from "../../../src/mls/tree/codec.js";
import { treeHash } from "../../../src/mls/tree/hash.js";
import { addLeaf, removeLeaf, toFullWidth, updateLeaf } from "../../../src/mls/tree/tree.js";
import type { RatchetTree } from "../../../src/mls/tree/types.js";
import { PROVIDERS, bytesToHex, hex, vectorTests } from "../../vectors/helpers.js";

interface TreeOperationsVector {
  cipher_suite: number;
  tree_before: string;
  proposal: string;
  proposal_sender: number;
  tree_hash_before: string;
  tree_after: string;
  tree_hash_after: string;
}

vectorTests<TreeOperationsVector>("tree-operations.json", PROVIDERS, async (v, cs) => {
  const before = toFullWidth(decodeExact(hex(v.tree_before), readRatchetTree));
  expect(bytesToHex(await treeHash(before, cs.hash))).toBe(v.tree_hash_before);
  const proposal = decodeExact(hex(v.proposal), readProposal);
  let after: RatchetTree;
  if (proposal.proposalType === 1) after = addLeaf(before, proposal.keyPackage.leafNode).tree;
  else if (proposal.proposalType === 2) after = updateLeaf(before, v.proposal_sender, proposal.leafNode);
  else if (proposal.proposalType === 3) after = removeLeaf(before, proposal.removed);
  else throw new Error(`unexpected proposal type ${proposal.proposalType}`);
  expect(bytesToHex(encode(after, writeRatchetTree))).toBe(v.tree_after);
  expect(bytesToHex(await treeHash(after, cs.hash))).toBe(v.tree_hash_after);
});
