/**
 * tree-validation.json through src/mls/tree: resolutions (§4.1.1), tree hashes (§7.8), parent
 * hashes (§7.9.2), and the whole §12.4.3.1 tree validation (leaf signatures with the group id).
 */
import { expect } from "vitest";
import { decodeExact } from "../../../src/mls/codec/index.js";
import { defaultAuthenticationService } from "../../../src/mls/credential/authentication.js";
import { readRatchetTree } from "../../../src/mls/tree/codec.js";
import { treeHashes } from "../../../src/mls/tree/hash.js";
import { verifyParentHashes } from "../../../src/mls/tree/parentHash.js";
import { resolution, rootIndex, toFullWidth } from "../../../src/mls/tree/tree.js";
import { validateRatchetTree } from "../../../src/mls/tree/validate.js";
import { PROVIDERS, bytesToHex, hex, vectorTests } from "../../vectors/helpers.js";

interface TreeValidationVector {
  cipher_suite: number;
  tree: string;
  group_id: string;
  resolutions: number[][];
  tree_hashes: string[];
}

vectorTests<TreeValidationVector>("tree-validation.json", PROVIDERS, async (v, cs) => {
  const tree = toFullWidth(decodeExact(hex(v.tree), readRatchetTree));
  expect(tree.length).toBeGreaterThanOrEqual(v.resolutions.length);
  v.resolutions.forEach((r, i) => expect(resolution(tree, i), `resolution(${i})`).toEqual(r));
  const hashes = await treeHashes(tree, cs.hash);
  v.tree_hashes.forEach((h, i) =>
    expect(bytesToHex(hashes[i] as Uint8Array), `tree hash of node ${i}`).toBe(h),
  );
  await verifyParentHashes(tree, cs.hash);
  await validateRatchetTree(tree, hashes[rootIndex(tree)] as Uint8Array, {
    cs,
    ciphersuite: v.cipher_suite,
    groupId: hex(v.group_id),
    extensions: [],
    authenticationService: defaultAuthenticationService,
  });
});
