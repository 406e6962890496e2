/**
 * RFC 9420 §12.2 rules on the list of proposals a commit carries, the same whether we commit it
 * or process someone else's commit, plus the §12.1 / §12.1.8 rules on who may send what and the
 * §12.4.3.2 shape of an external commit. Per-proposal checks that depend on the tree as the
 * earlier proposals left it (key packages, leaf nodes, removed leaves) run while applying the
 * list (applyProposals.ts).
 */
import { ErrorCode } from "../../errors.js";
import { bytesEqual } from "../crypto/bytes.js";
import { ProposalTypes, SenderTypes, type Proposal, type Sender } from "../framing/types.js";
import type { PreSharedKeyId } from "../keyschedule/types.js";
import { fail } from "./errors.js";

/** A proposal of a commit (§12.4): by value (its sender is the committer) or by reference. */
export interface ResolvedProposal {
  readonly proposal: Proposal;
  readonly sender: Sender;
  /** The §5.2 ProposalRef when the commit names it by reference; undefined when by value. */
  readonly ref: Uint8Array | undefined;
}

/** §12.4: a commit needs a path unless every proposal is an Add, a PreSharedKey or a ReInit (and there is one). */
export function pathRequired(proposals: readonly Proposal[]): boolean {
  if (proposals.length === 0) return true;
  return proposals.some(
    (p) =>
      p.proposalType !== ProposalTypes.add &&
      p.proposalType !== ProposalTypes.psk &&
      p.proposalType !== ProposalTypes.reinit,
  );
}

/** §8.4 two PreSharedKeyIDs name the same PSK (same type, id or group/epoch, and nonce). */
export function samePskId(a: PreSharedKeyId, b: PreSharedKeyId): boolean {
  if (a.pskType !== b.pskType || !bytesEqual(a.pskNonce, b.pskNonce)) return false;
  if (a.pskType === 1 && b.pskType === 1) return bytesEqual(a.pskId, b.pskId);
  if (a.pskType === 2 && b.pskType === 2)
    return a.usage === b.usage && a.pskEpoch === b.pskEpoch && bytesEqual(a.pskGroupId, b.pskGroupId);
  return false;
}

/** The leaf a proposal's sender occupies, for member senders. */
function memberLeaf(sender: Sender): number | undefined {
  return sender.senderType === SenderTypes.member ? sender.leafIndex : undefined;
}

/** §12.1.8 / §6: the proposal types each sender type may send (`i`: the proposal's position, for errors). */
export function checkSenderMaySend(p: ResolvedProposal, code: ErrorCode, i: number): void {
  const t = p.proposal.proposalType;
  switch (p.sender.senderType) {
    case SenderTypes.member:
      // §12.1.6: ExternalInit only comes with an external commit, from its committer.
      if (t === ProposalTypes.external_init && p.ref !== undefined)
        fail(
          code,
          "§12.1.6 external_init_sender",
          `proposal ${i}: an ExternalInit cannot be sent by reference`,
          { proposal: i },
        );
      return;
    case SenderTypes.external:
      // §12.1.8: an external sender proposes Add, Remove, PreSharedKey, ReInit or GroupContextExtensions.
      if (
        t !== ProposalTypes.add &&
        t !== ProposalTypes.remove &&
        t !== ProposalTypes.psk &&
        t !== ProposalTypes.reinit &&
        t !== ProposalTypes.group_context_extensions
      )
        fail(
          code,
          "§12.1.8 external_sender_proposal",
          `proposal ${i}: an external sender cannot propose type ${t}`,
          {
            proposal: i,
          },
        );
      return;
    case SenderTypes.new_member_proposal:
      // §12.1.8: a new_member_proposal sender proposes its own Add only.
      if (t !== ProposalTypes.add)
        fail(code, "§12.1.8 new_member_proposal", `proposal ${i}: a new member can only propose an Add`, {
          proposal: i,
        });
      return;
    case SenderTypes.new_member_commit:
      // §12.4.3.2: the external committer's proposals are all by value.
      if (p.ref !== undefined)
        fail(code, "§12.4.3.2 by_value", `proposal ${i}: an external commit carries its proposals by value`, {
          proposal: i,
        });
      return;
  }
}

/**
 * §12.2 (and §12.1.8, §12.4.3.2): the rules on a commit's proposal list as a whole, for the
 * commit sent by `committer` (a member, or a new_member_commit for an external commit). Throws
 * MlsRuleError(`code`) naming the first rule broken.
 */
export function checkProposalList(
  list: readonly ResolvedProposal[],
  committer: Sender,
  code: ErrorCode,
): void {
  const external = committer.senderType === SenderTypes.new_member_commit;
  const committerLeaf = memberLeaf(committer);
  const touched = new Set<number>();
  const psks: PreSharedKeyId[] = [];
  let gce = 0;
  let reinit = 0;
  let externalInit = 0;
  let removes = 0;
  const addSignatureKeys: Uint8Array[] = [];
  const addEncryptionKeys: Uint8Array[] = [];
  for (const [i, p] of list.entries()) {
    checkSenderMaySend(p, code, i);
    const proposal = p.proposal;
    switch (proposal.proposalType) {
      case ProposalTypes.update: {
        const leaf = memberLeaf(p.sender);
        // §12.1.2: an Update comes from a member, for its own leaf.
        if (leaf === undefined)
          fail(code, "§12.1.2 update_sender", `proposal ${i}: an Update from a non-member`, { proposal: i });
        // §12.2: the committer does not commit its own Update (its path replaces its leaf).
        if (leaf === committerLeaf)
          fail(code, "§12.2 committer_update", `proposal ${i}: an Update of the committer's own leaf`, {
            proposal: i,
          });
        // §12.2: at most one Update or Remove per leaf.
        if (touched.has(leaf))
          fail(
            code,
            "§12.2 duplicate_update_remove",
            `proposal ${i}: leaf ${leaf} is updated or removed twice`,
            {
              proposal: i,
              leafIndex: leaf,
            },
          );
        touched.add(leaf);
        break;
      }
      case ProposalTypes.remove: {
        removes++;
        // §12.2: the committer does not remove itself.
        if (proposal.removed === committerLeaf)
          fail(code, "§12.2 committer_removed", `proposal ${i}: a Remove of the committer`, { proposal: i });
        // §12.2: at most one Update or Remove per leaf.
        if (touched.has(proposal.removed))
          fail(
            code,
            "§12.2 duplicate_update_remove",
            `proposal ${i}: leaf ${proposal.removed} is updated or removed twice`,
            {
              proposal: i,
              leafIndex: proposal.removed,
            },
          );
        touched.add(proposal.removed);
        break;
      }
      case ProposalTypes.psk: {
        // §12.2: no PreSharedKeyID twice.
        if (psks.some((q) => samePskId(q, proposal.psk)))
          fail(code, "§12.2 duplicate_psk", `proposal ${i}: the same PSK twice`, { proposal: i });
        psks.push(proposal.psk);
        break;
      }
      case ProposalTypes.group_context_extensions:
        gce++;
        // §12.2: at most one GroupContextExtensions proposal.
        if (gce > 1)
          fail(
            code,
            "§12.2 multiple_group_context_extensions",
            `proposal ${i}: a second GroupContextExtensions`,
            { proposal: i },
          );
        break;
      case ProposalTypes.reinit:
        reinit++;
        break;
      case ProposalTypes.external_init:
        externalInit++;
        // §12.2: an ExternalInit only in an external commit.
        if (!external)
          fail(code, "§12.2 external_init", `proposal ${i}: an ExternalInit in a commit from a member`, {
            proposal: i,
          });
        break;
      case ProposalTypes.add: {
        const leaf = proposal.keyPackage.leafNode;
        // §12.2: two Adds of the same client (same signature key).
        if (addSignatureKeys.some((k) => bytesEqual(k, leaf.signatureKey)))
          fail(code, "§12.2 duplicate_add", `proposal ${i}: a second Add with the same signature key`, {
            proposal: i,
          });
        // §7.3: encryption keys are unique in the tree the Adds build.
        if (addEncryptionKeys.some((k) => bytesEqual(k, leaf.encryptionKey)))
          fail(
            code,
            "§7.3 duplicate_encryption_key",
            `proposal ${i}: a second Add with the same encryption key`,
            {
              proposal: i,
            },
          );
        addSignatureKeys.push(leaf.signatureKey);
        addEncryptionKeys.push(leaf.encryptionKey);
        break;
      }
    }
  }
  // §12.2: a ReInit comes alone.
  if (reinit > 0 && list.length > 1)
    fail(code, "§12.2 reinit_not_alone", "a ReInit proposal together with other proposals");
  if (external) {
    // §12.4.3.2: exactly one ExternalInit …
    if (externalInit !== 1)
      fail(
        code,
        "§12.4.3.2 external_init",
        `an external commit carries ${externalInit} ExternalInit proposals, not one`,
      );
    // … at most one Remove (the joiner's old leaf), and otherwise only PreSharedKey proposals.
    if (removes > 1) fail(code, "§12.4.3.2 remove", "an external commit removes more than one leaf");
    for (const [i, p] of list.entries()) {
      const t = p.proposal.proposalType;
      if (t !== ProposalTypes.external_init && t !== ProposalTypes.remove && t !== ProposalTypes.psk)
        fail(code, "§12.4.3.2 proposal_type", `proposal ${i}: type ${t} in an external commit`, {
          proposal: i,
        });
    }
  }
}
