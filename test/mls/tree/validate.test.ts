/**
 * Negative tests of the §12.4.3.1 tree validation (src/mls/tree/validate.ts): a valid tree built
 * with our own code, one field changed, the one error expected with its rule.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { ErrorCode, MlsRuleError } from "../../../src/errors.js";
import { encode } from "../../../src/mls/codec/index.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import type { LeafNode } from "../../../src/mls/keypackage/types.js";
import { treeHash } from "../../../src/mls/tree/hash.js";
import { verifyParentHashes } from "../../../src/mls/tree/parentHash.js";
import { addLeaf, getLeaf, getParentNode, withNodes } from "../../../src/mls/tree/tree.js";
import type { ParentNode, RatchetTree } from "../../../src/mls/tree/types.js";
import { checkUnmergedLeaves } from "../../../src/mls/tree/unmergedLeaves.js";
import { validateLeafNode, validateRatchetTree, type GroupParams } from "../../../src/mls/tree/validate.js";
import {
  addedGroup,
  commitPath,
  groupParams,
  makeMember,
  signLeaf,
  suite,
  type TestGroup,
} from "./fixtures.js";

let cs: CiphersuiteImpl;
/** 8 leaves: members 0..6 added, commits by 0 then 4, then member 7 added (unmerged at 11 and 7). */
let g: TestGroup;

beforeAll(async () => {
  cs = await suite();
  g = await addedGroup(cs, 7);
  await commitPath(cs, g, 0);
  await commitPath(cs, g, 4);
  const m7 = await makeMember(cs, "member-7");
  g.members.push(m7);
  g.tree = addLeaf(g.tree, m7.leaf).tree;
});

async function expectRule(
  p: Promise<unknown> | (() => unknown),
  rule: string,
  code?: ErrorCode,
): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${rule}`).toBeInstanceOf(MlsRuleError);
  expect((err as MlsRuleError).rule).toBe(rule);
  if (code !== undefined) expect((err as MlsRuleError).code).toBe(code);
}

async function validate(tree: RatchetTree, extra: Partial<GroupParams> = {}): Promise<void> {
  return validateRatchetTree(tree, await treeHash(tree, cs.hash), groupParams(cs, extra));
}

function withParent(tree: RatchetTree, x: number, change: Partial<ParentNode>): RatchetTree {
  const p = getParentNode(tree, x) as ParentNode;
  return withNodes(tree, [[x, { nodeType: 2, parent: { ...p, ...change } }]]);
}

function withLeaf(tree: RatchetTree, leafIndex: number, leaf: LeafNode): RatchetTree {
  return withNodes(tree, [[leafIndex * 2, { nodeType: 1, leaf }]]);
}

describe("a valid tree", () => {
  test("passes, with its unmerged leaves", async () => {
    expect(getParentNode(g.tree, 11)?.unmergedLeaves).toEqual([7]);
    expect(getParentNode(g.tree, 7)?.unmergedLeaves).toEqual([7]);
    expect(getParentNode(g.tree, 13)).toBeUndefined();
    await validate(g.tree);
  });
});

describe("§7.8 tree hash", () => {
  test("a tree that is not the GroupContext's is refused", async () => {
    const wrong = await treeHash(withParent(g.tree, 7, { unmergedLeaves: [] }), cs.hash);
    await expectRule(
      validateRatchetTree(g.tree, wrong, groupParams(cs)),
      "§7.8 tree_hash",
      ErrorCode.InvalidWelcome,
    );
  });
});

describe("§7.9.2 parent hashes", () => {
  test("a parent whose parent_hash was changed is not parent-hash valid", async () => {
    const p9 = getParentNode(g.tree, 9) as ParentNode;
    const forged = withParent(g.tree, 9, { parentHash: p9.parentHash.map((b) => b ^ 1) });
    await expectRule(validate(forged), "§7.9.2 parent_hash", ErrorCode.InvalidWelcome);
  });

  test("a parent whose encryption key was replaced is not parent-hash valid", async () => {
    const other = getLeaf(g.tree, 3) as LeafNode;
    const forged = withParent(g.tree, 3, { encryptionKey: other.encryptionKey.map((b) => b ^ 0x55) });
    await expectRule(validate(forged), "§7.9.2 parent_hash");
  });

  test("a parent node spliced in where a blank was is refused", async () => {
    const p1 = getParentNode(g.tree, 1) as ParentNode;
    const forged = withNodes(g.tree, [[13, { nodeType: 2, parent: { ...p1, unmergedLeaves: [7] } }]]);
    await expectRule(validate(forged), "§7.9.2 parent_hash");
  });
});

describe("§7.9.1 unmerged leaves", () => {
  test("a leaf listed by the root but not by the non-blank node between them (the && rule)", async () => {
    const forged = withParent(g.tree, 11, { unmergedLeaves: [] });
    expect(() => checkUnmergedLeaves(forged)).toThrow(MlsRuleError);
    await expectRule(validate(forged), "§7.9.1 unmerged_leaves", ErrorCode.InvalidWelcome);
  });

  test("a leaf that is not below the parent", async () => {
    await expectRule(validate(withParent(g.tree, 9, { unmergedLeaves: [0] })), "§7.9.1 unmerged_leaves");
  });

  test("a blank leaf", async () => {
    const blank = withNodes(g.tree, [[14, undefined]]);
    await expectRule(() => checkUnmergedLeaves(blank), "§7.9.1 unmerged_leaves");
  });

  test("a leaf listed twice", async () => {
    await expectRule(
      () => checkUnmergedLeaves(withParent(g.tree, 11, { unmergedLeaves: [7, 7] })),
      "§7.9.1 unmerged_leaves",
    );
  });

  test("a leaf past the end of the tree", async () => {
    await expectRule(
      () => checkUnmergedLeaves(withParent(g.tree, 7, { unmergedLeaves: [7, 9] })),
      "§7.9.1 unmerged_leaves",
    );
  });

  test("verifyParentHashes runs the check first, with the caller's code", async () => {
    await expectRule(
      verifyParentHashes(withParent(g.tree, 11, { unmergedLeaves: [] }), cs.hash, ErrorCode.InvalidCommit),
      "§7.9.1 unmerged_leaves",
      ErrorCode.InvalidCommit,
    );
  });
});

describe("§7.3 leaves of the tree", () => {
  test("two leaves with one encryption key", async () => {
    const a = g.members[1];
    const twin = await makeMember(cs, "twin", {
      encryptionKey: { privateKey: a!.encryptionPrivateKey, publicKey: a!.leaf.encryptionKey },
    });
    await expectRule(validate(addLeaf(g.tree, twin.leaf).tree), "§7.3 duplicate_encryption_key");
  });

  test("two leaves with one signature key", async () => {
    const a = g.members[2]!;
    const twin = await makeMember(cs, "twin", {
      signature: { signKey: a.signaturePrivateKey, publicKey: a.signatureKey },
    });
    await expectRule(validate(addLeaf(g.tree, twin.leaf).tree), "§7.3 duplicate_signature_key");
  });

  // Leaf 7 is unmerged: no parent hash covers it, so only its signature can refuse it.
  test("a leaf whose signature does not verify", async () => {
    const leaf = getLeaf(g.tree, 7) as LeafNode;
    const forged = withLeaf(g.tree, 7, {
      ...leaf,
      signature: leaf.signature.map((b, i) => (i === 0 ? b ^ 1 : b)),
    });
    await expectRule(validate(forged), "§7.3 leaf_signature");
  });

  test("an update leaf signed for another leaf index", async () => {
    const m = g.members[7]!;
    const leaf = { ...m.leaf, leafNodeSource: 2 as const, lifetime: undefined };
    await validate(withLeaf(g.tree, 7, await signLeaf(cs, leaf, m.signaturePrivateKey, 7)));
    const signedFor6 = await signLeaf(cs, leaf, m.signaturePrivateKey, 6);
    await expectRule(validate(withLeaf(g.tree, 7, signedFor6)), "§7.3 leaf_signature");
  });

  test("an expired key_package leaf, and one not valid yet", async () => {
    const leaf7 = getLeaf(g.tree, 7) as LeafNode;
    const notAfter = leaf7.lifetime!.notAfter;
    await validate(g.tree, { now: notAfter });
    await expectRule(validate(g.tree, { now: notAfter + 1n }), "§7.3 lifetime");
    const late = await makeMember(cs, "late", { notAfter: 10n });
    await expectRule(validate(addLeaf(g.tree, late.leaf).tree, { now: 11n }), "§7.3 lifetime");
  });

  test("an empty Basic identity is refused by the default authentication service", async () => {
    const nobody = await makeMember(cs, "nobody", { identity: new Uint8Array(0) });
    await expectRule(
      validate(addLeaf(g.tree, nobody.leaf).tree),
      "§5.3.1 credential",
      ErrorCode.CredentialRejected,
    );
  });

  test("every leaf goes through the application's authentication service", async () => {
    const seen: string[] = [];
    await validate(g.tree, {
      authenticationService: {
        validate: (input) => {
          seen.push(new TextDecoder().decode((input.credential as { identity: Uint8Array }).identity));
          expect(input.context).toBe("tree");
          return input.credential.credentialType === 1 && seen.length === 8
            ? { ok: false, reason: "no" }
            : { ok: true };
        },
      },
    }).catch((e: unknown) => expect((e as MlsRuleError).rule).toBe("§5.3.1 credential"));
    expect(seen).toHaveLength(8);
  });

  test("a group extension the leaves do not support", async () => {
    const ext = [{ extensionType: 0xff00, extensionData: new Uint8Array(0) }];
    await expectRule(validate(g.tree, { extensions: ext }), "§7.3 group_extensions");
  });

  test("required capabilities the leaves do not list", async () => {
    // RequiredCapabilities { extension_types<V> = [0xff01]; proposal_types<V> = []; credential_types<V> = [] }
    const data = Uint8Array.of(2, 0xff, 0x01, 0, 0);
    const ext = [{ extensionType: 3, extensionData: data }];
    await expectRule(validate(g.tree, { extensions: ext }), "§7.3 required_capabilities");
    const x509 = [{ extensionType: 3, extensionData: Uint8Array.of(0, 0, 2, 0, 2) }];
    await expectRule(validate(g.tree, { extensions: x509 }), "§7.3 required_capabilities");
  });

  test("a wrong node type at a leaf position", async () => {
    const p = getParentNode(g.tree, 1) as ParentNode;
    const bad = [...g.tree];
    bad[2] = { nodeType: 2, parent: p };
    await expectRule(validateRatchetTree(bad, new Uint8Array(32), groupParams(cs)), "§12.4.3.3 ratchet_tree");
  });
});

describe("§7.3 a leaf entering the group (validateLeafNode)", () => {
  test("an update leaf: source, fresh encryption key, signature over group_id and leaf_index", async () => {
    const m = g.members[3]!;
    const fresh = await makeMember(cs, "member-3", {
      signature: { signKey: m.signaturePrivateKey, publicKey: m.signatureKey },
    });
    const update = await signLeaf(
      cs,
      { ...fresh.leaf, leafNodeSource: 2, lifetime: undefined },
      m.signaturePrivateKey,
      3,
    );
    await validateLeafNode(update, "update", 3, g.tree, groupParams(cs));
    await expectRule(
      validateLeafNode(update, "commit", 3, g.tree, groupParams(cs)),
      "§7.3 leaf_node_source",
      ErrorCode.InvalidCommit,
    );
    await expectRule(validateLeafNode(update, "update", 2, g.tree, groupParams(cs)), "§7.3 leaf_signature");
    const stale = await signLeaf(
      cs,
      { ...update, encryptionKey: m.leaf.encryptionKey },
      m.signaturePrivateKey,
      3,
    );
    await expectRule(
      validateLeafNode(stale, "update", 3, g.tree, groupParams(cs)),
      "§7.3 duplicate_encryption_key",
    );
    const stolen = await signLeaf(
      cs,
      { ...update, signatureKey: g.members[2]!.signatureKey },
      m.signaturePrivateKey,
      3,
    );
    await expectRule(validateLeafNode(stolen, "update", 3, g.tree, groupParams(cs)), "§7.3 leaf_signature");
  });

  test("a key package leaf whose signature key another member has", async () => {
    const a = g.members[1]!;
    const twin = await makeMember(cs, "twin", {
      signature: { signKey: a.signaturePrivateKey, publicKey: a.signatureKey },
    });
    const slot = addLeaf(g.tree, twin.leaf).leafIndex;
    await expectRule(
      validateLeafNode(twin.leaf, "key_package", slot, g.tree, groupParams(cs)),
      "§7.3 duplicate_signature_key",
    );
  });

  test("a leaf whose credential type another member does not support", async () => {
    const m = await makeMember(cs, "x509-capable");
    const leaf = await signLeaf(
      cs,
      {
        ...m.leaf,
        capabilities: { ...m.leaf.capabilities, credentials: [1, 2] },
        credential: { credentialType: 2, certificates: [Uint8Array.of(1)] },
      },
      m.signaturePrivateKey,
    );
    await expectRule(
      validateLeafNode(leaf, "key_package", 8, g.tree, groupParams(cs)),
      "§7.3 credential_type",
    );
  });
});

test("encoding helper sanity: the fixture tree round-trips its hash", async () => {
  expect((await treeHash(g.tree, cs.hash)).length).toBe(32);
  expect(encode(1, (w, v) => w.u8(v))).toEqual(Uint8Array.of(1));
});
