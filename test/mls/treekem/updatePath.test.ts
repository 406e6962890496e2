/**
 * UpdatePath creation and processing (RFC 9420 §7.4–§7.6, §12.4.2) and the joiner's path secret
 * check (§12.4.3.1) between members of groups built with our own code; negative tests change one
 * thing of a valid path and expect the one error with its rule.
 */
import { beforeAll, describe, expect, test } from "vitest";
import { ErrorCode, MlsRuleError } from "../../../src/errors.js";
import { bytesToHex } from "../../../src/mls/crypto/bytes.js";
import { encryptWithLabel } from "../../../src/mls/crypto/labels.js";
import type { CiphersuiteImpl } from "../../../src/mls/crypto/types.js";
import type { LeafNode } from "../../../src/mls/keypackage/types.js";
import { treeHash } from "../../../src/mls/tree/hash.js";
import { pathParentHashes } from "../../../src/mls/tree/parentHash.js";
import {
  addLeaf,
  encryptionKeyOf,
  filteredDirectPathSteps,
  getLeaf,
  nodeAt,
} from "../../../src/mls/tree/tree.js";
import type { RatchetTree } from "../../../src/mls/tree/types.js";
import { joinerPathKeys } from "../../../src/mls/treekem/joiner.js";
import { nodeKeyPair } from "../../../src/mls/treekem/pathSecrets.js";
import type { UpdatePath } from "../../../src/mls/treekem/types.js";
import {
  applyUpdatePath,
  createUpdatePath,
  pathSecretForJoiner,
  type CreatedUpdatePath,
} from "../../../src/mls/treekem/updatePath.js";
import {
  GROUP_ID,
  addedGroup,
  commitPath,
  contextFor,
  groupParams,
  makeMember,
  signLeaf,
  suite,
  type Member,
  type TestGroup,
} from "../tree/fixtures.js";

let cs: CiphersuiteImpl;
/** 6 members (0..5, 8 leaves), commits by 0 and 3; then member 6 and 7 added by member 1's commit. */
let g: TestGroup;
/** The tree with the joiners added, before member 1's path. */
let withJoiners: RatchetTree;
let joiners: Member[];
let created: CreatedUpdatePath;

beforeAll(async () => {
  cs = await suite();
  g = await addedGroup(cs, 6);
  await commitPath(cs, g, 0);
  await commitPath(cs, g, 3);
  joiners = [await makeMember(cs, "joiner-6"), await makeMember(cs, "joiner-7")];
  withJoiners = g.tree;
  for (const j of joiners) withJoiners = addLeaf(withJoiners, j.leaf).tree;
  created = await createPath(withJoiners, 1);
});

function createPath(tree: RatchetTree, committer: number): Promise<CreatedUpdatePath> {
  const m = g.members[committer] as Member;
  return createUpdatePath({
    cs,
    tree,
    leafIndex: committer,
    groupId: GROUP_ID,
    leaf: m.leaf,
    signaturePrivateKey: m.signaturePrivateKey,
    excludedLeaves: [6, 7],
    context: contextFor(),
  });
}

function apply(
  receiver: number,
  updatePath: UpdatePath,
  over: Partial<Parameters<typeof applyUpdatePath>[0]> = {},
) {
  return applyUpdatePath({
    cs,
    tree: withJoiners,
    senderLeafIndex: 1,
    updatePath,
    receiverLeafIndex: receiver,
    privateKeys: g.privateKeys.get(receiver) as Map<number, Uint8Array>,
    excludedLeaves: [6, 7],
    context: contextFor(),
    group: groupParams(cs),
    ...over,
  });
}

async function expectRule(
  p: Promise<unknown>,
  rule: string,
  code: ErrorCode = ErrorCode.InvalidCommit,
): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${rule}`).toBeInstanceOf(MlsRuleError);
  expect((err as MlsRuleError).rule).toBe(rule);
  expect((err as MlsRuleError).code).toBe(code);
}

/** A copy of `path` with node `i` changed by `f`. */
function withNode(
  path: UpdatePath,
  i: number,
  f: (n: UpdatePath["nodes"][number]) => UpdatePath["nodes"][number],
): UpdatePath {
  return { ...path, nodes: path.nodes.map((n, k) => (k === i ? f(n) : n)) };
}

describe("UpdatePath round trip", () => {
  test("every other member gets the committer's commit secret, tree and keys", async () => {
    const steps = filteredDirectPathSteps(withJoiners, 1);
    expect(created.updatePath.nodes).toHaveLength(steps.length);
    // Node 7's copath child 11 is blank: its resolution is leaves 4, 5 and the joiners 6, 7,
    // who get their path secret in the Welcome instead.
    expect(steps.map((s) => s.node)).toEqual([1, 3, 7]);
    expect(created.updatePath.nodes.map((n) => n.encryptedPathSecret.length)).toEqual([1, 1, 2]);
    for (const j of [0, 2, 3, 4, 5]) {
      const r = await apply(j, created.updatePath);
      expect(bytesToHex(r.commitSecret)).toBe(bytesToHex(created.commitSecret));
      expect(bytesToHex(r.treeHash)).toBe(bytesToHex(created.treeHash));
      expect(bytesToHex(await treeHash(r.tree, cs.hash))).toBe(bytesToHex(created.treeHash));
      // Every path key derived is the key of its node in the new tree.
      expect(r.pathSecrets.size).toBeGreaterThan(0);
      for (const [x, secret] of r.pathSecrets) {
        const kp = await nodeKeyPair(secret, cs);
        expect(bytesToHex(encryptionKeyOf(nodeAt(r.tree, x)!))).toBe(bytesToHex(kp.publicKey));
        expect(bytesToHex(r.privateKeys.get(x)!)).toBe(bytesToHex(kp.privateKey));
      }
    }
  });

  test("the joiners' path secrets derive the tree's keys (§12.4.3.1)", async () => {
    for (const j of [6, 7]) {
      const secret = pathSecretForJoiner(created, 1, j);
      expect(secret).toBeDefined();
      const keys = await joinerPathKeys(cs, created.tree, j, 1, secret as Uint8Array);
      expect([...keys.keys()]).toEqual([7]);
      expect(bytesToHex(keys.get(7) as Uint8Array)).toBe(
        bytesToHex(created.privateKeys.get(7) as Uint8Array),
      );
    }
  });

  test("a member without a path above it in a sparse tree (single-member group)", async () => {
    const solo = await addedGroup(cs, 1);
    const m = solo.members[0] as Member;
    const c = await createUpdatePath({
      cs,
      tree: solo.tree,
      leafIndex: 0,
      groupId: GROUP_ID,
      leaf: m.leaf,
      signaturePrivateKey: m.signaturePrivateKey,
      context: contextFor(),
    });
    expect(c.updatePath.nodes).toHaveLength(0);
    expect(c.commitSecret).toHaveLength(32);
    expect(c.updatePath.leafNode.leafNodeSource).toBe(3);
  });
});

describe("§12.4.3.1 a forged Welcome path_secret", () => {
  test("a random path secret is refused", async () => {
    await expectRule(
      joinerPathKeys(cs, created.tree, 6, 1, cs.rng.randomBytes(32)),
      "§12.4.3.1 path_secret",
      ErrorCode.InvalidWelcome,
    );
  });

  test("the path secret of another node is refused", async () => {
    const secret = created.pathSecrets.get(3) as Uint8Array;
    await expectRule(
      joinerPathKeys(cs, created.tree, 6, 1, secret),
      "§12.4.3.1 path_secret",
      ErrorCode.InvalidWelcome,
    );
  });

  test("a signer whose filtered path does not reach the joiner's ancestor", async () => {
    // Signer 7 and joiner 6 meet at node 13, blank in the tree (no path secret can be checked there).
    const secret = pathSecretForJoiner(created, 1, 6) as Uint8Array;
    await expectRule(
      joinerPathKeys(cs, created.tree, 6, 7, secret),
      "§12.4.3.1 path_secret",
      ErrorCode.InvalidWelcome,
    );
  });
});

describe("§7.6 / §12.4.2 a forged UpdatePath", () => {
  test("a path secret that does not derive the path's keys", async () => {
    // Path node 3's secret goes to the resolution of its copath child, node 5 (members 2, 3):
    // the committer encrypts another secret there, under the right context.
    const steps = filteredDirectPathSteps(withJoiners, 1);
    const at = steps.findIndex((s) => s.node === 3);
    expect(steps[at]?.copathChild).toBe(5);
    const ctx = await contextFor()(created.treeHash);
    const pk = await cs.hpke.importPublicKey(encryptionKeyOf(nodeAt(withJoiners, 5)!));
    const wrong = await encryptWithLabel(pk, "UpdatePathNode", ctx, cs.rng.randomBytes(32), cs.hpke);
    const forged = withNode(created.updatePath, at, (n) => ({
      ...n,
      encryptedPathSecret: [{ kemOutput: wrong.enc, ciphertext: wrong.ct }],
    }));
    await expectRule(apply(2, forged), "§7.6 path_public_key");
    await apply(0, forged); // member 0 decrypts at node 1, below the forged node: unaffected
  });

  test("a path node key that the leaf's parent hash does not cover", async () => {
    const forged = withNode(created.updatePath, 0, (n) => ({ ...n, encryptionKey: cs.rng.randomBytes(32) }));
    await expectRule(apply(0, forged), "§7.9.2 parent_hash");
  });

  test("a path one node short", async () => {
    const forged = { ...created.updatePath, nodes: created.updatePath.nodes.slice(1) };
    await expectRule(apply(0, forged), "§7.6 update_path_length");
  });

  test("a ciphertext missing", async () => {
    const forged = withNode(created.updatePath, 1, (n) => ({
      ...n,
      encryptedPathSecret: n.encryptedPathSecret.slice(1),
    }));
    await expectRule(apply(4, forged), "§7.6 encrypted_path_secret");
  });

  test("a ciphertext that does not decrypt", async () => {
    const forged = withNode(created.updatePath, 0, (n) => ({
      ...n,
      encryptedPathSecret: n.encryptedPathSecret.map((c) => ({
        ...c,
        ciphertext: c.ciphertext.map((b) => b ^ 1),
      })),
    }));
    await expectRule(apply(0, forged), "§7.6 path_secret_decryption");
  });

  test("a receiver with another provisional GroupContext cannot decrypt", async () => {
    const other = contextFor([{ extensionType: 0xff00, extensionData: new Uint8Array(0) }]);
    await expectRule(apply(0, created.updatePath, { context: other }), "§7.6 path_secret_decryption");
  });

  test("a commit leaf with another source", async () => {
    const m = g.members[1] as Member;
    const leaf = await signLeaf(
      cs,
      { ...created.updatePath.leafNode, leafNodeSource: 2, parentHash: undefined },
      m.signaturePrivateKey,
      1,
    );
    await expectRule(apply(0, { ...created.updatePath, leafNode: leaf }), "§7.3 leaf_node_source");
  });

  test("a commit leaf whose signature does not verify", async () => {
    const leaf: LeafNode = {
      ...created.updatePath.leafNode,
      signature: created.updatePath.leafNode.signature.map((b) => b ^ 1),
    };
    await expectRule(apply(0, { ...created.updatePath, leafNode: leaf }), "§7.3 leaf_signature");
  });

  test("a path re-using an encryption key of the tree, with consistent parent hashes and signature", async () => {
    const m = g.members[1] as Member;
    const steps = filteredDirectPathSteps(withJoiners, 1);
    const reused = (getLeaf(withJoiners, 4) as LeafNode).encryptionKey;
    const nodes = created.updatePath.nodes.map((n, i) =>
      i === steps.length - 1 ? { ...n, encryptionKey: reused } : n,
    );
    const ph = await pathParentHashes(
      withJoiners,
      steps,
      nodes.map((n) => n.encryptionKey),
      cs.hash,
    );
    const leaf = await signLeaf(
      cs,
      { ...created.updatePath.leafNode, parentHash: ph.leafParentHash },
      m.signaturePrivateKey,
      1,
    );
    await expectRule(apply(0, { leafNode: leaf, nodes }), "§12.4.2 duplicate_encryption_key");
  });

  test("a commit leaf re-using the committer's old encryption key", async () => {
    const m = g.members[1] as Member;
    const leaf = await signLeaf(
      cs,
      { ...created.updatePath.leafNode, encryptionKey: m.leaf.encryptionKey },
      m.signaturePrivateKey,
      1,
    );
    await expectRule(apply(0, { ...created.updatePath, leafNode: leaf }), "§7.3 duplicate_encryption_key");
  });

  test("a blank committer", async () => {
    await expectRule(apply(0, created.updatePath, { senderLeafIndex: 6, tree: g.tree }), "§12.4.2 committer");
  });
});

test("commitPath fixture: the members agree after several commits", async () => {
  const h = await addedGroup(cs, 5);
  const secrets = [await commitPath(cs, h, 2), await commitPath(cs, h, 4), await commitPath(cs, h, 0)];
  expect(new Set(secrets.map(bytesToHex)).size).toBe(3);
});
