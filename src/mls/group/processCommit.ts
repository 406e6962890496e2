/**
 * RFC 9420 §12.4.2 processing a commit another member (or an external joiner, §12.4.3.2) sent,
 * once its framing was checked (message.ts: group, epoch, membership tag, signature):
 *
 * 1. resolve the proposals (by reference: from this epoch's received proposals);
 * 2. check the list (§12.2) and apply it to a staged tree (§12.3);
 * 3. require a path when the proposals do (§12.4), and apply it (§7.5–§7.6: leaf, parent hash,
 *    decrypted path secret, derived public keys);
 * 4. the new epoch: transcript hashes, key schedule (with the external init secret for an
 *    external commit, §8.3), and the confirmation tag (§8.2);
 * 5. only then the new state. A commit that removes us ends our membership (§12.4.2).
 *
 * Any failure throws; the state passed in is untouched.
 */
import { ErrorCode, MlsRuleError } from "../../errors.js";
import { bytesEqual } from "../crypto/bytes.js";
import { encode } from "../codec/index.js";
import { writeCredential } from "../credential/codec.js";
import type { AuthenticationService } from "../credential/authentication.js";
import type { AuthenticatedContent } from "../framing/authenticatedContent.js";
import { ProposalOrRefTypes, SenderTypes, type Commit, type Sender } from "../framing/types.js";
import type { LeafNode } from "../keypackage/types.js";
import { pskSecret } from "../keyschedule/psk.js";
import {
  externalInitImport,
  externalKeyPair,
  groupContextBytes,
  zeroSecret,
} from "../keyschedule/schedule.js";
import { verifyConfirmationTag } from "../keyschedule/transcript.js";
import { treeHash } from "../tree/hash.js";
import { addLeaf, getLeaf, leafCount, nextLeafIndex } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { applyUpdatePath, type PathResult } from "../treekem/updatePath.js";
import { applyProposals, type PskLookup } from "./applyProposals.js";
import { fail, renamed } from "../validation/errors.js";
import { enterEpoch, nextEpoch, privateKeysOf, provisionalContext } from "./epoch.js";
import { pathRequired, type ResolvedProposal } from "../validation/proposalList.js";
import { keysStillInTree, pskLookupOf, type GroupState } from "./state.js";

const C = ErrorCode.InvalidCommit;

export interface ProcessCommitOptions {
  /** Session clock, seconds since the Unix epoch (§7.3 lifetimes). */
  readonly now: bigint;
  readonly authenticationService: AuthenticationService;
  readonly psk?: PskLookup;
}

export interface ProcessedCommit {
  readonly state: GroupState;
  /** True when the commit removed us (the state is then inactive, at the old epoch). */
  readonly removedUs: boolean;
  /** The committer's leaf in the new tree (a member, or the external joiner's new leaf). */
  readonly committerLeaf: number;
  readonly committerLeafNode: LeafNode | undefined;
}

/** §12.4.2: the proposals of `commit`, by value (sent by the committer) or from this epoch's received ones. */
export function resolveProposals(state: GroupState, commit: Commit, committer: Sender): ResolvedProposal[] {
  return commit.proposals.map((p, i): ResolvedProposal => {
    if (p.type === ProposalOrRefTypes.proposal)
      return { proposal: p.proposal, sender: committer, ref: undefined };
    const found = state.pending.find((q) => bytesEqual(q.ref, p.reference));
    // §12.4.2: every proposal named by reference must have been received in this epoch.
    if (found === undefined)
      fail(
        C,
        "§12.4.2 unknown_proposal_ref",
        `proposal ${i} is a reference to a proposal we did not receive`,
        { proposal: i },
      );
    return { proposal: found.proposal, sender: found.sender, ref: found.ref };
  });
}

/**
 * A placeholder leaf for the external joiner's slot while its UpdatePath is checked (§12.4.3.2:
 * the joiner takes the leftmost blank leaf, like an Add): the path's leaf replaces it, and an
 * empty encryption key collides with no key of the tree.
 */
function placeholder(leaf: LeafNode): LeafNode {
  return { ...leaf, encryptionKey: new Uint8Array(0) };
}

/** §12.4.2: processes a verified commit content from `ac.content.sender`. */
export async function processCommit(
  state: GroupState,
  ac: AuthenticatedContent,
  options: ProcessCommitOptions,
): Promise<ProcessedCommit> {
  const { cs } = state;
  const content = ac.content;
  if (content.contentType !== 3) throw new TypeError("not a commit");
  const commit = content.commit;
  const sender = content.sender;
  const external = sender.senderType === SenderTypes.new_member_commit;
  // §12.4.2: a commit comes from a member or, as an external commit, from a new member.
  if (sender.senderType !== SenderTypes.member && !external)
    fail(C, "§12.4.2 committer", `a commit from sender type ${sender.senderType}`);
  if (sender.senderType === SenderTypes.member) {
    // §12.4.2: the committer is a member of the tree; our own commits are merged, not processed.
    if (sender.leafIndex >= leafCount(state.tree) || getLeaf(state.tree, sender.leafIndex) === undefined)
      fail(C, "§12.4.2 committer", `the committer's leaf ${sender.leafIndex} is blank`);
    if (sender.leafIndex === state.ownLeaf) fail(C, "§12.4.2 own_commit", "a commit from our own leaf");
  }
  const confirmation = ac.auth.confirmationTag;
  if (confirmation === undefined) fail(C, "§6.1 confirmation_tag", "a commit without confirmation tag");

  const list = resolveProposals(state, commit, sender);
  const applied = await applyProposals(list, {
    cs,
    context: state.context,
    tree: state.tree,
    committer: sender,
    authenticationService: options.authenticationService,
    now: options.now,
    code: C,
    psk: pskLookupOf(state, options.psk),
  });
  const proposals = list.map((p) => p.proposal);
  // §12.4: a commit whose proposals require a path carries one; an external commit always does (§12.4.3.2).
  if ((external || pathRequired(proposals)) && commit.path === undefined)
    fail(C, "§12.4 path_required", "the commit has no UpdatePath but its proposals require one");

  // §12.4.2: a commit that removes us ends our membership; we cannot follow its new epoch.
  if (applied.removed.includes(state.ownLeaf)) {
    return {
      state: { ...state, active: false, pending: [] },
      removedUs: true,
      committerLeaf: -1,
      committerLeafNode: undefined,
    };
  }

  if (external && commit.path !== undefined)
    for (const r of applied.removed) {
      const old = getLeaf(state.tree, r);
      // §12.4.3.2: an external commit removes only the joiner's own old leaf (same credential).
      if (
        old === undefined ||
        !bytesEqual(
          encode(old.credential, writeCredential),
          encode(commit.path.leafNode.credential, writeCredential),
        )
      )
        fail(
          C,
          "§12.4.3.2 resync_credential",
          `the external commit removes leaf ${r}, which is not the joiner's`,
          { leafIndex: r },
        );
    }

  let tree: RatchetTree = applied.tree;
  let committerLeaf = sender.senderType === SenderTypes.member ? sender.leafIndex : -1;
  if (external && commit.path !== undefined) {
    // §12.4.3.2: the joiner's leaf goes where an Add would put it.
    committerLeaf = nextLeafIndex(tree);
    tree = addLeaf(tree, placeholder(commit.path.leafNode)).tree;
  }

  const provisional = provisionalContext(state.context, applied.extensions, new Uint8Array(0));
  let path: PathResult | undefined;
  if (commit.path !== undefined) {
    path = await applyUpdatePath({
      cs,
      tree,
      senderLeafIndex: committerLeaf,
      updatePath: commit.path,
      receiverLeafIndex: state.ownLeaf,
      privateKeys: privateKeysOf(state.nodeKeys),
      excludedLeaves: applied.added.map((a) => a.leafIndex),
      context: (th) => groupContextBytes({ ...provisional, treeHash: th }),
      group: {
        cs,
        ciphersuite: state.context.ciphersuite,
        groupId: state.context.groupId,
        extensions: applied.extensions,
        authenticationService: options.authenticationService,
        now: options.now,
        code: C,
      },
    });
    tree = path.tree;
  }
  const th = path?.treeHash ?? (await treeHash(tree, cs.hash));

  // §8.3: an external commit's init_secret comes from its ExternalInit, under the external key pair.
  let initSecret = state.keys.initSecret;
  if (external) {
    const kemOutput = applied.externalInitKemOutput;
    if (kemOutput === undefined)
      fail(C, "§12.4.3.2 external_init", "an external commit without ExternalInit");
    const pair = await externalKeyPair(cs, state.keys.externalSecret);
    try {
      initSecret = await externalInitImport(cs, pair.privateKey, kemOutput);
    } catch (e) {
      throw new MlsRuleError(
        C,
        "§8.3 external_init",
        "the ExternalInit kem_output does not decapsulate",
        {},
        { cause: e },
      );
    } finally {
      pair.privateKey.fill(0);
    }
  }
  const psk = await pskSecret(cs, applied.psks);
  const commitSecret = path?.commitSecret ?? zeroSecret(cs);
  const next = await nextEpoch({
    cs,
    current: state.context,
    interimTranscriptHash: state.interimTranscriptHash,
    wireFormat: ac.wireFormat,
    content,
    signature: ac.auth.signature,
    extensions: applied.extensions,
    treeHash: th,
    initSecret,
    commitSecret,
    pskSecret: psk,
  });
  commitSecret.fill(0);
  psk.fill(0);
  next.joinerSecret.fill(0);
  if (external) initSecret.fill(0);
  for (const s of path?.pathSecrets.values() ?? []) s.fill(0);
  // §8.2 / §12.4.2: the confirmation tag is the MAC of the new confirmed transcript hash.
  await verifyConfirmationTag(
    cs,
    next.secrets.confirmationKey,
    next.context.confirmedTranscriptHash,
    confirmation,
    C,
  ).catch((e: unknown) => renamed(e, "§12.4.2 confirmation_tag"));

  const privateKeys = privateKeysOf(keysStillInTree(tree, state.nodeKeys));
  for (const [x, k] of path?.privateKeys ?? []) privateKeys.set(x, k);
  const newState = await enterEpoch(state, {
    cs,
    context: next.context,
    tree,
    ownLeaf: state.ownLeaf,
    privateKeys,
    signaturePrivateKey: state.signaturePrivateKey,
    secrets: next.secrets,
    confirmationTag: confirmation,
  });
  return {
    state: newState,
    removedUs: false,
    committerLeaf,
    committerLeafNode: getLeaf(tree, committerLeaf),
  };
}
