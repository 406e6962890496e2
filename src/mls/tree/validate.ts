/**
 * Validation of leaf nodes against a group (RFC 9420 §7.3) and of a whole ratchet tree as a
 * joiner receives it (§12.4.3.1: tree hash §7.8, parent hashes §7.9.2, unmerged leaves, every
 * leaf §7.3, unique keys). Every failure is an MlsRuleError whose `rule` names the check.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { decodeExact, type Reader } from "../codec/index.js";
import type { AuthenticationContext, AuthenticationService } from "../credential/authentication.js";
import { bytesEqual, bytesToHex } from "../crypto/bytes.js";
import { verifyOwnWithLabel, verifyWithLabel } from "../crypto/labels.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import {
  ExtensionTypes,
  LeafNodeSources,
  type Extension,
  type LeafNode,
  type LeafNodeSource,
} from "../keypackage/types.js";
import { treeHash } from "./hash.js";
import { leafNodeTbs } from "./nodeEncoding.js";
import { isLeaf } from "./math.js";
import { verifyParentHashes } from "./parentHash.js";
import { encryptionKeyOf, leafCount, members } from "./tree.js";
import type { RatchetTree } from "./types.js";

/** What a leaf is checked against: the group's GroupContext fields and the checking client. */
export interface GroupParams {
  readonly cs: CiphersuiteImpl;
  /** Cipher suite code point (§17.1). */
  readonly ciphersuite: number;
  readonly groupId: Uint8Array;
  /** GroupContext extensions (required_capabilities among them). */
  readonly extensions: readonly Extension[];
  readonly authenticationService: AuthenticationService;
  /** Seconds since the Unix epoch; key_package leaves must be within their lifetime. Unset: not checked. */
  readonly now?: bigint;
  /** The error code of this context: InvalidWelcome when joining, InvalidCommit for commits. */
  readonly code?: ErrorCode;
}

/** §7.2: extension types 1..5 are default (supported by all, never listed in capabilities). */
function isDefaultExtension(t: number): boolean {
  return t >= 1 && t <= 5;
}

/** §7.2: proposal types 1..7 are default. */
function isDefaultProposal(t: number): boolean {
  return t >= 1 && t <= 7;
}

/** §11.1 RequiredCapabilities. */
export interface RequiredCapabilities {
  readonly extensionTypes: readonly number[];
  readonly proposalTypes: readonly number[];
  readonly credentialTypes: readonly number[];
}

const readU16 = (r: Reader): number => r.u16();

/** §11.1 the required_capabilities extension of a GroupContext, if any. */
export function requiredCapabilities(extensions: readonly Extension[]): RequiredCapabilities | undefined {
  const ext = extensions.find((e) => e.extensionType === ExtensionTypes.required_capabilities);
  if (ext === undefined) return undefined;
  return decodeExact(ext.extensionData, (r) => ({
    extensionTypes: r.vecOf(readU16),
    proposalTypes: r.vecOf(readU16),
    credentialTypes: r.vecOf(readU16),
  }));
}

function fail(g: GroupParams, rule: string, message: string, details: Record<string, unknown> = {}): never {
  throw new MlsRuleError(g.code ?? ErrorCode.InvalidCommit, rule, message, details);
}

/** §7.3: the leaf's capabilities cover the group's requirements and its own extensions. */
function checkCapabilities(leaf: LeafNode, g: GroupParams, leafIndex: number | undefined): void {
  const caps = leaf.capabilities;
  const req = requiredCapabilities(g.extensions);
  if (req !== undefined) {
    // §7.3 / §11.1: required extensions, proposals and credential types are all listed.
    for (const t of req.extensionTypes)
      if (!isDefaultExtension(t) && !caps.extensions.includes(t))
        fail(g, "§7.3 required_capabilities", `leaf ${leafIndex} does not support required extension ${t}`, {
          leafIndex,
        });
    for (const t of req.proposalTypes)
      if (!isDefaultProposal(t) && !caps.proposals.includes(t))
        fail(g, "§7.3 required_capabilities", `leaf ${leafIndex} does not support required proposal ${t}`, {
          leafIndex,
        });
    for (const t of req.credentialTypes)
      if (!caps.credentials.includes(t))
        fail(g, "§7.3 required_capabilities", `leaf ${leafIndex} does not support required credential ${t}`, {
          leafIndex,
        });
  }
  // §7.2 / §12.1.7: every member supports the group's (non-default) extensions.
  for (const e of g.extensions)
    if (!isDefaultExtension(e.extensionType) && !caps.extensions.includes(e.extensionType))
      fail(
        g,
        "§7.3 group_extensions",
        `leaf ${leafIndex} does not support group extension ${e.extensionType}`,
        {
          leafIndex,
        },
      );
  // §7.3: each extension of the leaf is listed in its own capabilities.
  for (const e of leaf.extensions)
    if (!isDefaultExtension(e.extensionType) && !caps.extensions.includes(e.extensionType))
      fail(
        g,
        "§7.3 leaf_extensions",
        `leaf ${leafIndex} carries extension ${e.extensionType} it does not list`,
        {
          leafIndex,
        },
      );
  // §7.2: the leaf's own credential type is one it supports.
  if (!caps.credentials.includes(leaf.credential.credentialType))
    fail(g, "§7.3 credential_type", `leaf ${leafIndex} does not list its own credential type`, { leafIndex });
}

/** §7.3 lifetime: for key_package leaves, `now` within [not_before, not_after]. */
function checkLifetime(leaf: LeafNode, g: GroupParams, leafIndex: number | undefined): void {
  if (g.now === undefined || leaf.leafNodeSource !== LeafNodeSources.key_package) return;
  const l = leaf.lifetime;
  if (l === undefined) fail(g, "§7.3 lifetime", `leaf ${leafIndex} has no lifetime`, { leafIndex });
  if (g.now < l.notBefore) fail(g, "§7.3 lifetime", `leaf ${leafIndex} is not valid yet`, { leafIndex });
  if (g.now > l.notAfter) fail(g, "§7.3 lifetime", `leaf ${leafIndex} has expired`, { leafIndex });
}

/** A signature key pair of ours, whose leaves a joiner may check by signing again (`verifyOwnWithLabel`). */
export interface OwnSignatureKey {
  readonly signatureKey: Uint8Array;
  readonly signaturePrivateKey: Uint8Array;
}

/** §7.3: the LeafNodeTBS signature, with group_id and leaf_index for update and commit sources. */
function signatureValid(
  leaf: LeafNode,
  g: GroupParams,
  leafIndex: number,
  own?: OwnSignatureKey,
): Promise<boolean> {
  const tbs = leafNodeTbs(leaf, { groupId: g.groupId, leafIndex });
  // Our own leaf (same signature key): the same check, run as `verifyOwnWithLabel`.
  if (own !== undefined && bytesEqual(leaf.signatureKey, own.signatureKey))
    return verifyOwnWithLabel(
      own.signaturePrivateKey,
      leaf.signatureKey,
      "LeafNodeTBS",
      tbs,
      leaf.signature,
      g.cs.signature,
    );
  return verifyWithLabel(leaf.signatureKey, "LeafNodeTBS", tbs, leaf.signature, g.cs.signature);
}

async function checkSignature(leaf: LeafNode, g: GroupParams, leafIndex: number): Promise<void> {
  if (!(await signatureValid(leaf, g, leafIndex)))
    fail(g, "§7.3 leaf_signature", `the signature of leaf ${leafIndex} does not verify`, { leafIndex });
}

/** §5.3.1: the authentication service accepts the leaf's credential. */
async function checkCredential(
  leaf: LeafNode,
  g: GroupParams,
  leafIndex: number | undefined,
  context: AuthenticationContext,
): Promise<void> {
  const r = await g.authenticationService.validate({
    credential: leaf.credential,
    signatureKey: leaf.signatureKey,
    ciphersuite: g.ciphersuite,
    context,
  });
  if (!r.ok)
    throw new MlsRuleError(
      ErrorCode.CredentialRejected,
      "§5.3.1 credential",
      `credential of leaf ${leafIndex} refused: ${r.reason}`,
      {
        leafIndex,
        reason: r.reason,
      },
    );
}

/** §7.3 / §5.3: credential types in use are supported by every member (`leaves` includes `leaf`). */
function checkCredentialTypes(
  g: GroupParams,
  leaves: readonly { leafIndex: number; leaf: LeafNode }[],
): void {
  const inUse = new Set(leaves.map((m) => m.leaf.credential.credentialType));
  for (const m of leaves)
    for (const t of inUse)
      if (!m.leaf.capabilities.credentials.includes(t))
        fail(g, "§7.3 credential_type", `leaf ${m.leafIndex} does not support credential type ${t} in use`, {
          leafIndex: m.leafIndex,
        });
}

/** Where a leaf node is met, which fixes its expected source (§7.3 leaf_node_source). */
export type LeafOrigin = "key_package" | "update" | "commit";

const SOURCE_OF: Readonly<Record<LeafOrigin, LeafNodeSource>> = {
  key_package: LeafNodeSources.key_package,
  update: LeafNodeSources.update,
  commit: LeafNodeSources.commit,
};

const AUTH_CONTEXT: Readonly<Record<LeafOrigin, AuthenticationContext>> = {
  key_package: "keypackage",
  update: "update",
  commit: "commit_path",
};

/**
 * §7.3 validation of a leaf node entering the group at `leafIndex` of `tree` (the tree it joins,
 * where the slot holds the old leaf for an update or commit, or is blank for an add): source,
 * signature, credential (AS), capabilities, lifetime, credential type support, and keys unique
 * among the other nodes. A key_package leaf's signature has no group context (§7.2 LeafNodeTBS).
 */
export async function validateLeafNode(
  leaf: LeafNode,
  origin: LeafOrigin,
  leafIndex: number,
  tree: RatchetTree,
  g: GroupParams,
  /**
   * `signatureVerified`: the caller has just verified this leaf's signature, e.g. a key_package
   * leaf whose KeyPackage passed §10.1 (its LeafNodeTBS has no group context: same message).
   */
  options?: { readonly signatureVerified?: boolean },
): Promise<void> {
  // §7.3: leaf_node_source matches where the leaf appears.
  if (leaf.leafNodeSource !== SOURCE_OF[origin])
    fail(
      g,
      "§7.3 leaf_node_source",
      `leaf ${leafIndex} has source ${leaf.leafNodeSource} in a(n) ${origin}`,
      {
        leafIndex,
      },
    );
  if (options?.signatureVerified !== true || origin !== "key_package")
    await checkSignature(leaf, g, leafIndex);
  await checkCredential(leaf, g, leafIndex, AUTH_CONTEXT[origin]);
  checkCapabilities(leaf, g, leafIndex);
  checkLifetime(leaf, g, leafIndex);
  const others = members(tree).filter((m) => m.leafIndex !== leafIndex);
  checkCredentialTypes(g, [...others, { leafIndex, leaf }]);
  // §7.3: encryption keys unique in the tree, the replaced leaf's included: an update (§12.1.2)
  // and a commit's path leaf (§12.4.2) bring a new one.
  for (let x = 0; x < tree.length; x++) {
    const n = tree[x];
    if (n === undefined) continue;
    if (bytesEqual(encryptionKeyOf(n), leaf.encryptionKey))
      fail(g, "§7.3 duplicate_encryption_key", `leaf ${leafIndex} reuses the encryption key of node ${x}`, {
        leafIndex,
        node: x,
      });
  }
  // §7.3: signature keys unique among the other members.
  for (const m of others)
    if (bytesEqual(m.leaf.signatureKey, leaf.signatureKey))
      fail(
        g,
        "§7.3 duplicate_signature_key",
        `leaf ${leafIndex} reuses the signature key of leaf ${m.leafIndex}`,
        {
          leafIndex,
          other: m.leafIndex,
        },
      );
}

/** §12.4.3.3: leaves at even indices, parents at odd ones, at least one member. */
function checkShape(tree: RatchetTree, g: GroupParams): void {
  if (tree.length === 0) fail(g, "§12.4.3.3 ratchet_tree", "the ratchet tree is empty");
  leafCount(tree);
  for (let x = 0; x < tree.length; x++) {
    const n = tree[x];
    if (n !== undefined && (n.nodeType === 1) !== isLeaf(x))
      fail(g, "§12.4.3.3 ratchet_tree", `node ${x} has the wrong node type`, { node: x });
  }
}

/**
 * §7.3 / §12.4.3.1: every encryption key in the tree (leaves and parents) appears once, and
 * every signature key once among the leaves.
 */
export function checkUniqueKeys(tree: RatchetTree, g: GroupParams): void {
  const enc = new Map<string, number>();
  const sig = new Map<string, number>();
  for (let x = 0; x < tree.length; x++) {
    const n = tree[x];
    if (n === undefined) continue;
    const k = bytesToHex(encryptionKeyOf(n));
    const first = enc.get(k);
    if (first !== undefined)
      fail(g, "§7.3 duplicate_encryption_key", `nodes ${first} and ${x} share an encryption key`, {
        node: x,
        other: first,
      });
    enc.set(k, x);
    if (n.nodeType !== 1) continue;
    const s = bytesToHex(n.leaf.signatureKey);
    const firstLeaf = sig.get(s);
    if (firstLeaf !== undefined)
      fail(g, "§7.3 duplicate_signature_key", `leaves ${firstLeaf / 2} and ${x / 2} share a signature key`, {
        leafIndex: x / 2,
        other: firstLeaf / 2,
      });
    sig.set(s, x);
  }
}

/**
 * §12.4.3.1 "Verify the integrity of the ratchet tree" for a joiner: shape, tree hash against the
 * GroupContext (§7.8), unmerged leaves (§7.9.1), parent hashes (§7.9.2), every leaf valid (§7.3:
 * signature with group_id/leaf_index, credential through the AS, capabilities, lifetime of
 * key_package leaves at `now`, credential types), unique encryption and signature keys.
 */
export async function validateRatchetTree(
  tree: RatchetTree,
  expectedTreeHash: Uint8Array,
  params: GroupParams,
  /** The joiner's own signature key pair: a leaf signed with it is checked by signing again. */
  own?: OwnSignatureKey,
): Promise<void> {
  const g: GroupParams = { ...params, code: params.code ?? ErrorCode.InvalidWelcome };
  checkShape(tree, g);
  // §7.8 / §12.4.3.1: the tree is the one the GroupContext commits to.
  if (!bytesEqual(await treeHash(tree, g.cs.hash), expectedTreeHash))
    fail(g, "§7.8 tree_hash", "the ratchet tree does not match the GroupContext tree_hash");
  // §7.9.1 then §7.9.2: unmerged leaves, and every non-blank parent is parent-hash valid.
  await verifyParentHashes(tree, g.cs.hash, g.code);
  const leaves = members(tree);
  if (leaves.length === 0) fail(g, "§12.4.3.3 ratchet_tree", "the ratchet tree has no member");
  // §7.3 for each non-blank leaf (signatures verified concurrently, failures reported in order).
  const signed = await Promise.all(
    leaves.map(({ leafIndex, leaf }) => signatureValid(leaf, g, leafIndex, own)),
  );
  for (const [i, { leafIndex, leaf }] of leaves.entries()) {
    if (signed[i] !== true)
      fail(g, "§7.3 leaf_signature", `the signature of leaf ${leafIndex} does not verify`, { leafIndex });
    await checkCredential(leaf, g, leafIndex, "tree");
    checkCapabilities(leaf, g, leafIndex);
    checkLifetime(leaf, g, leafIndex);
  }
  checkCredentialTypes(g, leaves);
  checkUniqueKeys(tree, g);
}
