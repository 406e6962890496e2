/**
 * RFC 9420 §12.3 applying a commit's proposal list to a staged copy of the tree and the
 * GroupContext extensions, in the order the RFC fixes: GroupContextExtensions, then Updates,
 * Removes, Adds (in list order), then the PreSharedKeys are looked up. Each proposal is
 * checked (§12.1) against the tree as the proposals before it left it; the list rules of §12.2
 * are checked first (proposals.ts). Nothing here changes the group state: the caller merges the
 * result once every other check of the commit passed.
 */
import { ErrorCode, InvalidKeypackageError } from "../../errors.js";
import type { AuthenticationService } from "../credential/authentication.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { ProposalTypes, SenderTypes } from "../framing/types.js";
import type { Extension, KeyPackage } from "../keypackage/types.js";
import { verifyKeyPackage } from "../keypackage/validate.js";
import type { PskInput } from "../keyschedule/psk.js";
import type { GroupContext, PreSharedKeyId } from "../keyschedule/types.js";
import { addLeaf, getLeaf, leafCount, members, nextLeafIndex, removeLeaf, updateLeaf } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { requiredCapabilities, validateLeafNode, type GroupParams } from "../tree/validate.js";
import { decodeAs, fail } from "../validation/errors.js";
import { readExternalSenders } from "./extensions.js";
import { checkProposalList, type ResolvedProposal } from "../validation/proposalList.js";

/** Looks up the value of a PSK a commit names (§8.4): an external PSK, or a resumption PSK we hold. */
export type PskLookup = (id: PreSharedKeyId) => Uint8Array | undefined;

/** What the proposals are applied to and checked against. */
export interface ApplyContext {
  readonly cs: CiphersuiteImpl;
  /** The GroupContext of the current epoch. */
  readonly context: GroupContext;
  /** The ratchet tree of the current epoch. */
  readonly tree: RatchetTree;
  /** The commit's sender: a member, or new_member_commit for an external commit. */
  readonly committer: Parameters<typeof checkProposalList>[1];
  readonly authenticationService: AuthenticationService;
  /** The session clock, seconds since the Unix epoch (§7.3 lifetimes). */
  readonly now: bigint;
  /** The error of this context: InvalidCommit when processing, the caller's when committing. */
  readonly code: ErrorCode;
  readonly psk: PskLookup;
  /** Key packages the caller verified (§10.1) just before: not verified a second time. */
  readonly verifiedKeyPackages?: ReadonlySet<KeyPackage>;
}

/** The staged result of a proposal list. */
export interface AppliedProposals {
  readonly tree: RatchetTree;
  /** The GroupContext extensions of the new epoch. */
  readonly extensions: readonly Extension[];
  readonly added: readonly { readonly leafIndex: number; readonly keyPackage: KeyPackage }[];
  readonly removed: readonly number[];
  readonly updated: readonly number[];
  /** §8.4 the PSKs in list order, with their values. */
  readonly psks: readonly PskInput[];
  /** §12.1.6 the ExternalInit's kem_output, in an external commit. */
  readonly externalInitKemOutput: Uint8Array | undefined;
}

function groupParams(ctx: ApplyContext, extensions: readonly Extension[]): GroupParams {
  return {
    cs: ctx.cs,
    ciphersuite: ctx.context.ciphersuite,
    groupId: ctx.context.groupId,
    extensions,
    authenticationService: ctx.authenticationService,
    now: ctx.now,
    code: ctx.code,
  };
}

/** §12.1.7 / §13: the new extensions decode where the RFC defines them, and no type appears twice. */
function checkNewExtensions(extensions: readonly Extension[], code: ErrorCode): void {
  const seen = new Set<number>();
  for (const e of extensions) {
    // §13: an extension type appears at most once in a list.
    if (seen.has(e.extensionType))
      fail(
        code,
        "§13 duplicate_extension",
        `GroupContextExtensions lists extension ${e.extensionType} twice`,
      );
    seen.add(e.extensionType);
  }
  // §12.1.8.1 / §11.1: the group's external_senders and required_capabilities are well-formed.
  decodeAs(code, "the external_senders extension", () => readExternalSenders(extensions));
  decodeAs(code, "the required_capabilities extension", () => requiredCapabilities(extensions));
}

/** §12.1.7: every member of the new tree supports the new extensions and required capabilities. */
function checkMembersSupport(tree: RatchetTree, extensions: readonly Extension[], code: ErrorCode): void {
  const required = requiredCapabilities(extensions);
  for (const { leafIndex, leaf } of members(tree)) {
    const caps = leaf.capabilities;
    const missing = (t: number, list: readonly number[]): boolean => !(t >= 1 && t <= 5) && !list.includes(t);
    for (const e of extensions)
      if (missing(e.extensionType, caps.extensions))
        fail(
          code,
          "§12.1.7 unsupported_extension",
          `leaf ${leafIndex} does not support extension ${e.extensionType}`,
          {
            leafIndex,
          },
        );
    if (required === undefined) continue;
    for (const t of required.extensionTypes)
      if (missing(t, caps.extensions))
        fail(
          code,
          "§12.1.7 required_capabilities",
          `leaf ${leafIndex} does not support required extension ${t}`,
          { leafIndex },
        );
    for (const t of required.proposalTypes)
      if (!(t >= 1 && t <= 7) && !caps.proposals.includes(t))
        fail(
          code,
          "§12.1.7 required_capabilities",
          `leaf ${leafIndex} does not support required proposal ${t}`,
          { leafIndex },
        );
    for (const t of required.credentialTypes)
      if (!caps.credentials.includes(t))
        fail(
          code,
          "§12.1.7 required_capabilities",
          `leaf ${leafIndex} does not support required credential ${t}`,
          {
            leafIndex,
          },
        );
  }
}

/** Accepts every credential: used where the credential is put to the real service once elsewhere. */
const ACCEPT_ALL: AuthenticationService = Object.freeze({ validate: () => ({ ok: true as const }) });

/**
 * §12.1.1 / §10.1: the key package of an Add is valid for this group at the session clock. Its
 * credential goes to the authentication service once, with the leaf (`validateLeafNode`).
 * Committing, a bad package stays an InvalidKeypackage; otherwise it is `code` with the rule:
 * "§7.3 lifetime" for the lifetime, "§10.1 <rule>" for the rest.
 */
export async function checkKeyPackage(
  kp: KeyPackage,
  params: {
    readonly cs: CiphersuiteImpl;
    readonly context: GroupContext;
    readonly now: bigint;
    readonly code: ErrorCode;
  },
  i: number,
): Promise<void> {
  try {
    await verifyKeyPackage(kp, {
      now: new Date(Number(params.now) * 1000),
      authenticationService: ACCEPT_ALL,
      group: { version: params.context.version, ciphersuite: params.context.ciphersuite },
      suiteImpl: () => Promise.resolve(params.cs),
    });
  } catch (e) {
    if (e instanceof InvalidKeypackageError && params.code !== ErrorCode.InvalidKeypackage) {
      const rule = e.rule.startsWith("lifetime_") ? "§7.3 lifetime" : `§10.1 ${e.rule}`;
      fail(params.code, rule, `proposal ${i}: the added key package is invalid: ${e.message}`, {
        proposal: i,
        keyPackageRule: e.rule,
      });
    }
    throw e;
  }
}

/** §8.4 the PSK a PreSharedKey proposal names: a nonce of KDF.Nh bytes, a usage we accept, a value we hold. */
function pskOf(id: PreSharedKeyId, ctx: ApplyContext, i: number): PskInput {
  // §8.4: psk_nonce is KDF.Nh bytes.
  if (id.pskNonce.length !== ctx.cs.kdf.size)
    fail(ctx.code, "§8.4 psk_nonce", `proposal ${i}: psk_nonce of ${id.pskNonce.length} bytes`, {
      proposal: i,
    });
  // §8.4 / §12.1.4: in a commit, a resumption PSK has usage application.
  if (id.pskType === 2 && id.usage !== 1)
    fail(
      ctx.code,
      "§12.1.4 resumption_usage",
      `proposal ${i}: resumption PSK usage ${id.usage} in a commit`,
      { proposal: i },
    );
  const psk = ctx.psk(id);
  // §8.4: a member must hold every PSK the commit names.
  if (psk === undefined)
    fail(ctx.code, "§8.4 psk_unknown", `proposal ${i}: a PSK we do not hold`, { proposal: i });
  return { id, psk };
}

/**
 * §12.2 then §12.3: checks the list and applies it to a copy of the current tree and
 * extensions. Throws MlsRuleError(`ctx.code`) for the first rule broken.
 */
export async function applyProposals(
  list: readonly ResolvedProposal[],
  ctx: ApplyContext,
): Promise<AppliedProposals> {
  const code = ctx.code;
  checkProposalList(list, ctx.committer, code);
  let tree = ctx.tree;
  let extensions = ctx.context.extensions;
  let externalInitKemOutput: Uint8Array | undefined;

  // §12.3 1: GroupContextExtensions replace the extensions; they apply to the rest of the list.
  for (const { proposal } of list) {
    if (proposal.proposalType !== ProposalTypes.group_context_extensions) continue;
    checkNewExtensions(proposal.extensions, code);
    extensions = proposal.extensions;
  }
  const g = groupParams(ctx, extensions);

  // §12.3 2: Updates replace the sender's leaf and blank its direct path.
  const updated: number[] = [];
  for (const { proposal, sender } of list) {
    if (proposal.proposalType !== ProposalTypes.update || sender.senderType !== SenderTypes.member) continue;
    const leafIndex = sender.leafIndex;
    // §12.1.2: the sender is a member of the tree.
    if (leafIndex >= leafCount(tree) || getLeaf(tree, leafIndex) === undefined)
      fail(code, "§12.1.2 update_sender", `an Update from blank leaf ${leafIndex}`, { leafIndex });
    // §12.1.2 / §7.3: the new leaf is a valid leaf node of source update.
    await validateLeafNode(proposal.leafNode, "update", leafIndex, tree, g);
    tree = updateLeaf(tree, leafIndex, proposal.leafNode);
    updated.push(leafIndex);
  }

  // §12.3 3: Removes blank the leaf and its direct path, then truncate the tree.
  const removed: number[] = [];
  for (const [i, { proposal }] of list.entries()) {
    if (proposal.proposalType !== ProposalTypes.remove) continue;
    const r = proposal.removed;
    // §12.1.3: the removed leaf is a member.
    if (!Number.isInteger(r) || r < 0 || r >= leafCount(tree) || getLeaf(tree, r) === undefined)
      fail(code, "§12.1.3 removed_leaf", `proposal ${i}: leaf ${r} is not a member`, {
        proposal: i,
        leafIndex: r,
      });
    tree = removeLeaf(tree, r);
    removed.push(r);
  }

  // §12.3 4: Adds, in list order, each into the leftmost blank leaf.
  const added: { leafIndex: number; keyPackage: KeyPackage }[] = [];
  for (const [i, { proposal }] of list.entries()) {
    if (proposal.proposalType !== ProposalTypes.add) continue;
    const kp = proposal.keyPackage;
    if (ctx.verifiedKeyPackages?.has(kp) !== true) await checkKeyPackage(kp, ctx, i);
    // §12.1.1 / §7.3: the new leaf fits the group (capabilities, credential types, unique keys);
    // its signature was verified with the package's (§10.1, just above or by the caller).
    await validateLeafNode(kp.leafNode, "key_package", nextLeafIndex(tree), tree, g, {
      signatureVerified: true,
    });
    const r = addLeaf(tree, kp.leafNode);
    tree = r.tree;
    added.push({ leafIndex: r.leafIndex, keyPackage: kp });
  }

  // §12.3 5: the PSKs, in list order.
  const psks: PskInput[] = [];
  for (const [i, { proposal }] of list.entries()) {
    if (proposal.proposalType === ProposalTypes.psk) psks.push(pskOf(proposal.psk, ctx, i));
    else if (proposal.proposalType === ProposalTypes.external_init)
      externalInitKemOutput = proposal.kemOutput;
    // §12.1.5: this engine does not reinitialize groups; a ReInit commit cannot be followed.
    else if (proposal.proposalType === ProposalTypes.reinit)
      fail(code, "§12.1.5 reinit_unsupported", `proposal ${i}: ReInit is not supported`, { proposal: i });
  }

  // §12.1.7: with new extensions, every member left in the group supports them.
  if (extensions !== ctx.context.extensions) checkMembersSupport(tree, extensions, code);
  return { tree, extensions, added, removed, updated, psks, externalInitKemOutput };
}
