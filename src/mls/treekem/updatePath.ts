/**
 * RFC 9420 §7.5–§7.6 UpdatePath: made by a committer (§12.4.1 with a path) and applied by the
 * other members (§12.4.2). Private keys of tree nodes are serialized HPKE private keys kept in a
 * `Map<nodeIndex, Uint8Array>`.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { Writer } from "../codec/writer.js";
import { bytesEqual, bytesToHex } from "../crypto/bytes.js";
import { decryptWithLabel, encryptWithLabel, signWithLabel } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { writeLeafNodeTbs } from "../keypackage/codec.js";
import { LeafNodeSources, type LeafNode } from "../keypackage/types.js";
import { treeHash } from "../tree/hash.js";
import { commonAncestor, directPath, leafToNode } from "../tree/math.js";
import { PARENT_HASH_RULE, pathParentHashes } from "../tree/parentHash.js";
import {
  encryptionKeyOf,
  filteredDirectPathSteps,
  getLeaf,
  leafCount,
  resolution,
  type PathStep,
} from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { validateLeafNode, type GroupParams } from "../tree/validate.js";
import { mergeUpdatePath } from "./merge.js";
import { nextPathSecret, nodeKeyPair, pathSecretChain, type NodeKeyPair } from "./pathSecrets.js";
import type { HpkeCiphertext, UpdatePath, UpdatePathNode } from "./types.js";

/** §7.6 label of the path secrets' EncryptWithLabel. */
export const UPDATE_PATH_LABEL = "UpdatePathNode";

/**
 * The provisional GroupContext (§12.4.1/§12.4.2: new epoch, the merged tree's hash, the current
 * confirmed transcript hash, the new extensions), serialized, for a given tree hash.
 */
export type ProvisionalContext = (treeHash: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** The parts of the committer's new leaf that the path does not set (§7.2). */
export type LeafTemplate = Pick<LeafNode, "signatureKey" | "credential" | "capabilities" | "extensions">;

export interface CreateUpdatePathParams {
  readonly cs: CiphersuiteImpl;
  /** The tree with the commit's proposals applied. */
  readonly tree: RatchetTree;
  readonly leafIndex: number;
  readonly groupId: Uint8Array;
  readonly leaf: LeafTemplate;
  readonly signaturePrivateKey: Uint8Array;
  /** Leaves added by this commit: they get their path secret in the Welcome, not in the path. */
  readonly excludedLeaves?: readonly number[];
  readonly context: ProvisionalContext;
  /** §7.4 leaf_secret (fresh random Nh bytes when absent). */
  readonly leafSecret?: Uint8Array;
}

/** What a commit with a path brings (§12.4.1). */
export interface PathResult {
  readonly tree: RatchetTree;
  readonly treeHash: Uint8Array;
  /** The provisional GroupContext, serialized. */
  readonly context: Uint8Array;
  readonly commitSecret: Uint8Array;
  /** Private keys of the tree nodes the member now holds, by node index. */
  readonly privateKeys: Map<number, Uint8Array>;
  /** Path secrets by node index (the committer's: for the Welcome's path_secret, §12.4.3.1). */
  readonly pathSecrets: Map<number, Uint8Array>;
}

export interface CreatedUpdatePath extends PathResult {
  readonly updatePath: UpdatePath;
}

function excludedNodes(excluded: readonly number[] | undefined): Set<number> {
  return new Set((excluded ?? []).map(leafToNode));
}

/** §7.6 the resolution a path node encrypts to: its copath child's, without the new joiners. */
function recipients(tree: RatchetTree, step: PathStep, excluded: ReadonlySet<number>): number[] {
  return resolution(tree, step.copathChild).filter((x) => !excluded.has(x));
}

/** §7.2 LeafNodeTBS signature of a commit leaf. */
async function signLeaf(
  cs: CiphersuiteImpl,
  leaf: Omit<LeafNode, "signature">,
  groupId: Uint8Array,
  leafIndex: number,
  key: Uint8Array,
): Promise<LeafNode> {
  const draft: LeafNode = { ...leaf, signature: new Uint8Array(0) };
  const w = new Writer(512);
  writeLeafNodeTbs(w, draft, { groupId, leafIndex });
  return { ...draft, signature: await signWithLabel(key, "LeafNodeTBS", w.finish(), cs.signature) };
}

/**
 * §7.5 / §12.4.1: a fresh UpdatePath for the committer at `leafIndex`: new leaf secret, path
 * secrets and keys up the filtered direct path (§7.4), parent hashes (§7.9), the signed commit
 * leaf, the merged tree, and each path secret encrypted (§7.6, EncryptWithLabel
 * "UpdatePathNode" with the provisional GroupContext) to every node of its copath child's
 * resolution except the new joiners.
 */
export async function createUpdatePath(p: CreateUpdatePathParams): Promise<CreatedUpdatePath> {
  const { cs, tree, leafIndex } = p;
  const steps = filteredDirectPathSteps(tree, leafIndex);
  const leafSecret = p.leafSecret ?? cs.rng.randomBytes(cs.kdf.size);
  const leafKeys = await nodeKeyPair(leafSecret, cs);
  const chain = await pathSecretChain(await nextPathSecret(leafSecret, cs.kdf), steps.length, cs.kdf);
  if (p.leafSecret === undefined) leafSecret.fill(0);
  const nodeKeys: NodeKeyPair[] = await Promise.all(chain.secrets.map((s) => nodeKeyPair(s, cs)));
  const keys = nodeKeys.map((k) => k.publicKey);
  // §7.9: parent hashes top-down; the leaf carries the lowest one.
  const ph = await pathParentHashes(tree, steps, keys, cs.hash);
  const leaf = await signLeaf(
    cs,
    {
      ...p.leaf,
      encryptionKey: leafKeys.publicKey,
      leafNodeSource: LeafNodeSources.commit,
      lifetime: undefined,
      parentHash: ph.leafParentHash,
    },
    p.groupId,
    leafIndex,
    p.signaturePrivateKey,
  );
  const merged = mergeUpdatePath(tree, leafIndex, leaf, steps, keys, ph.nodeParentHashes);
  const th = await treeHash(merged, cs.hash);
  const context = await p.context(th);
  const excluded = excludedNodes(p.excludedLeaves);
  const nodes: UpdatePathNode[] = await Promise.all(
    steps.map(async (step, i): Promise<UpdatePathNode> => {
      const secret = chain.secrets[i] as Uint8Array;
      const encryptedPathSecret = await Promise.all(
        recipients(merged, step, excluded).map(async (x): Promise<HpkeCiphertext> => {
          const node = merged[x];
          if (node === undefined)
            throw new MlsRuleError(
              ErrorCode.InternalError,
              "§4.1.1 resolution",
              `blank node ${x} in a resolution`,
            );
          const pk = await cs.hpke.importPublicKey(encryptionKeyOf(node));
          const { ct, enc } = await encryptWithLabel(pk, UPDATE_PATH_LABEL, context, secret, cs.hpke);
          return { kemOutput: enc, ciphertext: ct };
        }),
      );
      return { encryptionKey: keys[i] as Uint8Array, encryptedPathSecret };
    }),
  );
  const privateKeys = new Map<number, Uint8Array>([[leafToNode(leafIndex), leafKeys.privateKey]]);
  const pathSecrets = new Map<number, Uint8Array>();
  steps.forEach((s, i) => {
    privateKeys.set(s.node, (nodeKeys[i] as NodeKeyPair).privateKey);
    pathSecrets.set(s.node, chain.secrets[i] as Uint8Array);
  });
  return {
    updatePath: { leafNode: leaf, nodes },
    tree: merged,
    treeHash: th,
    context,
    commitSecret: chain.next,
    privateKeys,
    pathSecrets,
  };
}

/**
 * §12.4.3.1 the path secret a joiner at `joinerLeafIndex` gets in its Welcome: that of the lowest
 * node of the committer's filtered direct path above both (their common ancestor).
 */
export function pathSecretForJoiner(
  created: Pick<PathResult, "pathSecrets">,
  committerLeafIndex: number,
  joinerLeafIndex: number,
): Uint8Array | undefined {
  return created.pathSecrets.get(commonAncestor(leafToNode(committerLeafIndex), leafToNode(joinerLeafIndex)));
}

export interface ApplyUpdatePathParams {
  readonly cs: CiphersuiteImpl;
  /** The tree with the commit's proposals applied. */
  readonly tree: RatchetTree;
  readonly senderLeafIndex: number;
  readonly updatePath: UpdatePath;
  readonly receiverLeafIndex: number;
  /** The receiver's private keys by node index (its leaf's included). */
  readonly privateKeys: ReadonlyMap<number, Uint8Array>;
  /** Leaves added by this commit (not encrypted to). */
  readonly excludedLeaves?: readonly number[];
  readonly context: ProvisionalContext;
  /** The group the path's leaf node is validated against (§7.3). */
  readonly group: GroupParams;
}

function invalid(rule: string, message: string, details: Record<string, unknown> = {}): never {
  throw new MlsRuleError(ErrorCode.InvalidCommit, rule, message, details);
}

/** §12.4.2: none of the path's keys appears in the tree, nor twice in the path. */
function checkFreshPathKeys(tree: RatchetTree, path: UpdatePath): void {
  const inTree = new Set<string>();
  for (const n of tree) if (n !== undefined) inTree.add(bytesToHex(encryptionKeyOf(n)));
  inTree.add(bytesToHex(path.leafNode.encryptionKey));
  for (const [i, node] of path.nodes.entries()) {
    const k = bytesToHex(node.encryptionKey);
    if (inTree.has(k))
      invalid("§12.4.2 duplicate_encryption_key", `UpdatePath node ${i} reuses an encryption key`, {
        pathNode: i,
      });
    inTree.add(k);
  }
}

/**
 * §12.4.2 / §7.5–§7.6: checks and applies another member's UpdatePath: one node per filtered
 * direct path node, the right number of ciphertexts, a valid commit leaf (§7.3) whose
 * parent_hash is the one the path implies (§7.9.2), fresh keys; merges it, decrypts the path
 * secret meant for the receiver (EncryptWithLabel "UpdatePathNode" under the provisional
 * GroupContext), derives the secrets above it and checks (§7.6 MUST) that every derived public
 * key is the path's. Returns the new tree, the receiver's new private keys and the commit secret.
 */
export async function applyUpdatePath(p: ApplyUpdatePathParams): Promise<PathResult> {
  const { cs, tree, senderLeafIndex: sender, receiverLeafIndex: receiver, updatePath } = p;
  if (getLeaf(tree, sender) === undefined)
    invalid("§12.4.2 committer", `the committer's leaf ${sender} is blank`);
  if (sender === receiver)
    throw new TypeError("a member applies its own UpdatePath from createUpdatePath's result");
  const steps = filteredDirectPathSteps(tree, sender);
  // §7.6: one UpdatePathNode per node of the filtered direct path …
  if (updatePath.nodes.length !== steps.length)
    invalid(
      "§7.6 update_path_length",
      `${updatePath.nodes.length} path nodes for a filtered direct path of ${steps.length}`,
    );
  // … each with one ciphertext per node of its copath child's resolution (joiners excluded).
  const excluded = excludedNodes(p.excludedLeaves);
  const targets = steps.map((s) => recipients(tree, s, excluded));
  targets.forEach((t, i) => {
    const got = (updatePath.nodes[i] as UpdatePathNode).encryptedPathSecret.length;
    if (got !== t.length)
      invalid(
        "§7.6 encrypted_path_secret",
        `path node ${i} has ${got} ciphertexts for ${t.length} recipients`,
        { pathNode: i },
      );
  });
  // §12.4.2: the leaf is a valid commit leaf (§7.3) …
  const leaf = updatePath.leafNode;
  await validateLeafNode(leaf, "commit", sender, tree, {
    ...p.group,
    code: p.group.code ?? ErrorCode.InvalidCommit,
  });
  // … and no key of the path is already in the tree.
  checkFreshPathKeys(tree, updatePath);
  // §7.9.2: the leaf's parent_hash is the parent hash the path implies.
  const keys = updatePath.nodes.map((n) => n.encryptionKey);
  const ph = await pathParentHashes(tree, steps, keys, cs.hash);
  if (leaf.parentHash === undefined || !bytesEqual(leaf.parentHash, ph.leafParentHash))
    invalid(PARENT_HASH_RULE, "the commit leaf's parent_hash does not match its UpdatePath");
  // §7.5: merge, then the provisional GroupContext over the merged tree.
  const merged = mergeUpdatePath(tree, sender, leaf, steps, keys, ph.nodeParentHashes);
  const th = await treeHash(merged, cs.hash);
  const context = await p.context(th);
  // §7.6: the lowest path node above the receiver is their common ancestor.
  const ancestor = commonAncestor(leafToNode(receiver), leafToNode(sender));
  const at = steps.findIndex((s) => s.node === ancestor);
  if (at < 0)
    throw new MlsRuleError(
      ErrorCode.InternalError,
      "§7.6 path_secret",
      `receiver ${receiver} has no path node above it`,
    );
  const first = await decryptPathSecret(
    cs,
    p,
    targets[at] as number[],
    updatePath.nodes[at] as UpdatePathNode,
    context,
  );
  // §7.4 / §7.6: derive the secrets above and check every public key against the path.
  const chain = await pathSecretChain(first, steps.length - at, cs.kdf);
  // Keys of nodes the merge blanked or replaced are dropped (not zeroed: the caller's map owns them).
  const privateKeys = new Map(p.privateKeys);
  for (const x of directPath(leafToNode(sender), leafCount(tree))) privateKeys.delete(x);
  for (const x of privateKeys.keys()) if (merged[x] === undefined) privateKeys.delete(x);
  const pathSecrets = new Map<number, Uint8Array>();
  for (let i = at; i < steps.length; i++) {
    const secret = chain.secrets[i - at] as Uint8Array;
    const kp = await nodeKeyPair(secret, cs);
    if (!bytesEqual(kp.publicKey, keys[i] as Uint8Array)) {
      kp.privateKey.fill(0);
      invalid(
        "§7.6 path_public_key",
        `the key derived for path node ${(steps[i] as PathStep).node} is not the path's`,
        {
          node: (steps[i] as PathStep).node,
        },
      );
    }
    privateKeys.set((steps[i] as PathStep).node, kp.privateKey);
    pathSecrets.set((steps[i] as PathStep).node, secret);
  }
  return { tree: merged, treeHash: th, context, commitSecret: chain.next, privateKeys, pathSecrets };
}

/** §7.6: decrypts the one ciphertext meant for a node whose private key the receiver holds. */
async function decryptPathSecret(
  cs: CiphersuiteImpl,
  p: ApplyUpdatePathParams,
  targets: readonly number[],
  node: UpdatePathNode,
  context: Uint8Array,
): Promise<Uint8Array> {
  const j = targets.findIndex((x) => p.privateKeys.has(x));
  if (j < 0)
    throw new MlsRuleError(
      ErrorCode.InternalError,
      "§7.6 path_secret",
      "no private key for the resolution the path secret is sent to",
    );
  const ct = node.encryptedPathSecret[j] as HpkeCiphertext;
  try {
    const sk = await cs.hpke.importPrivateKey(p.privateKeys.get(targets[j] as number) as Uint8Array);
    return await decryptWithLabel(sk, UPDATE_PATH_LABEL, context, ct.kemOutput, ct.ciphertext, cs.hpke);
  } catch (e) {
    throw new MlsRuleError(
      ErrorCode.InvalidCommit,
      "§7.6 path_secret_decryption",
      "the path secret does not decrypt",
      {},
      { cause: e },
    );
  }
}
