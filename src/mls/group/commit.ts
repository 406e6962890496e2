/**
 * RFC 9420 §12.4.1 making a commit: the proposals received in this epoch (by reference) and
 * ours (by value: Removes, Adds, others), checked as a list (§12.2) and applied to a staged tree
 * (§12.3); an UpdatePath when required (§12.4) or asked for (a self-update); the commit signed
 * and sent as a PublicMessage (CoreCrypto's default wire policy refuses encrypted commits); the
 * new epoch's key schedule; a GroupInfo with `ratchet_tree` and `external_pub`; and a Welcome
 * for the added members. Nothing changes `state`: the caller keeps the returned state only once
 * the Delivery Service accepted the commit.
 */
import { ErrorCode } from "../../errors.js";
import { Writer } from "../codec/index.js";
import type { AuthenticationService } from "../credential/authentication.js";
import { toPublicMessage } from "../framing/public.js";
import { signFramedContent } from "../framing/sign.js";
import {
  ContentTypes,
  ProposalOrRefTypes,
  ProposalTypes,
  SenderTypes,
  WireFormats,
  type FramedContent,
  type Proposal,
  type ProposalOrRef,
  type Sender,
} from "../framing/types.js";
import { MLS10, type KeyPackage } from "../keypackage/types.js";
import { pskSecret } from "../keyschedule/psk.js";
import { groupContextBytes, zeroSecret } from "../keyschedule/schedule.js";
import { confirmationTag } from "../keyschedule/transcript.js";
import { treeHash } from "../tree/hash.js";
import { createUpdatePath, pathSecretForJoiner, type CreatedUpdatePath } from "../treekem/updatePath.js";
import { applyProposals, type PskLookup } from "./applyProposals.js";
import { fail } from "../validation/errors.js";
import { enterEpoch, nextEpoch, privateKeysOf, provisionalContext } from "./epoch.js";
import { bundleGroupInfo, encodedGroupInfo } from "./groupInfo.js";
import { encodeMlsMessage } from "./mlsMessage.js";
import { pathRequired, type ResolvedProposal } from "../validation/proposalList.js";
import { keysStillInTree, ownLeafNode, pskLookupOf, type GroupState, type PendingProposal } from "./state.js";
import { createWelcome } from "./welcomeCreate.js";
import type { GroupInfo } from "./types.js";

/** What to commit, besides the proposals received in this epoch. */
export interface CommitOptions {
  /** Members to add (Add proposals by value, §12.1.1), with their encoded bytes when known. */
  readonly adds?: readonly { readonly keyPackage: KeyPackage; readonly bytes?: Uint8Array }[];
  /** Leaves to remove (Remove proposals by value, §12.1.3). */
  readonly removes?: readonly number[];
  /** Other proposals by value (PreSharedKey, GroupContextExtensions). */
  readonly proposals?: readonly Proposal[];
  /** Include an UpdatePath even when the proposals do not require one (a self-update, §12.4). */
  readonly forcePath?: boolean;
  readonly authenticatedData?: Uint8Array;
  /** Session clock, seconds since the Unix epoch. */
  readonly now: bigint;
  readonly authenticationService: AuthenticationService;
  readonly psk?: PskLookup;
  /** Key packages in `adds` the caller verified (§10.1) just before. */
  readonly verifiedKeyPackages?: ReadonlySet<KeyPackage>;
}

/** A commit ready to send, and the state to keep once it is accepted. */
export interface CreatedCommit {
  readonly state: GroupState;
  /** MLSMessage(PublicMessage) carrying the Commit. */
  readonly commit: Uint8Array;
  /** MLSMessage(Welcome), when members are added. */
  readonly welcome: Uint8Array | undefined;
  /** MLSMessage(GroupInfo) of the new epoch. */
  readonly groupInfo: Uint8Array;
  readonly groupInfoObject: GroupInfo;
}

/** §6 MLSMessage(GroupInfo): version mls10, wire format, then the GroupInfo's (kept) encoding. */
function groupInfoMessage(gi: GroupInfo): Uint8Array {
  const body = encodedGroupInfo(gi);
  return new Writer(body.length + 4).u16(MLS10).u16(WireFormats.mls_group_info).raw(body).finish();
}

function leafOf(sender: Sender): number | undefined {
  return sender.senderType === SenderTypes.member ? sender.leafIndex : undefined;
}

/**
 * §12.2 as the committer applies it to the proposals it received: its own Updates and Removes
 * of itself are left out, a leaf's Remove is preferred to its Updates and the latest Update to
 * earlier ones, and a leaf we remove by value is not removed again by reference.
 */
export function pendingToCommit(state: GroupState, removesByValue: readonly number[]): PendingProposal[] {
  const own = state.ownLeaf;
  const removed = new Set(removesByValue);
  for (const p of state.pending)
    if (p.proposal.proposalType === ProposalTypes.remove && p.proposal.removed !== own)
      removed.add(p.proposal.removed);
  const out: PendingProposal[] = [];
  const removeTaken = new Set<number>(removesByValue);
  const latestUpdate = new Map<number, PendingProposal>();
  for (const p of state.pending) {
    const t = p.proposal.proposalType;
    if (t === ProposalTypes.update) {
      const leaf = leafOf(p.sender);
      if (leaf !== undefined && leaf !== own && !removed.has(leaf)) latestUpdate.set(leaf, p);
    }
  }
  for (const p of state.pending) {
    const proposal = p.proposal;
    if (proposal.proposalType === ProposalTypes.remove) {
      if (proposal.removed === own || removeTaken.has(proposal.removed)) continue;
      removeTaken.add(proposal.removed);
    } else if (proposal.proposalType === ProposalTypes.update) {
      const leaf = leafOf(p.sender);
      if (leaf === undefined || latestUpdate.get(leaf) !== p) continue;
    } else if (proposal.proposalType === ProposalTypes.external_init) continue;
    out.push(p);
  }
  return out;
}

/** §12.4.1: the commit of `state`'s pending proposals and `options`. */
export async function createCommit(state: GroupState, options: CommitOptions): Promise<CreatedCommit> {
  const { cs } = state;
  // §12.4.2: a member a commit removed can no longer commit.
  if (!state.active)
    fail(ErrorCode.InvalidMessage, "§12.4.2 inactive", "we are no longer a member of this group");
  const own = state.ownLeaf;
  const me: Sender = { senderType: SenderTypes.member, leafIndex: own };
  const removes = options.removes ?? [];
  const byRef = pendingToCommit(state, removes);
  const byValue: Proposal[] = [
    ...removes.map((removed): Proposal => ({ proposalType: ProposalTypes.remove, removed })),
    ...(options.adds ?? []).map(({ keyPackage }): Proposal => ({
      proposalType: ProposalTypes.add,
      keyPackage,
    })),
    ...(options.proposals ?? []),
  ];
  const list: ResolvedProposal[] = [
    ...byRef.map((p) => ({ proposal: p.proposal, sender: p.sender, ref: p.ref })),
    ...byValue.map((proposal) => ({ proposal, sender: me, ref: undefined })),
  ];
  const applied = await applyProposals(list, {
    cs,
    context: state.context,
    tree: state.tree,
    committer: me,
    authenticationService: options.authenticationService,
    now: options.now,
    code: (options.adds?.length ?? 0) > 0 ? ErrorCode.InvalidKeypackage : ErrorCode.InvalidCommit,
    psk: pskLookupOf(state, options.psk),
    ...(options.verifiedKeyPackages === undefined
      ? {}
      : { verifiedKeyPackages: options.verifiedKeyPackages }),
  });
  const proposals = list.map((p) => p.proposal);
  const withPath = options.forcePath === true || pathRequired(proposals);

  // §12.4.1: the UpdatePath, encrypted under the provisional GroupContext of the new epoch.
  const provisional = provisionalContext(state.context, applied.extensions, new Uint8Array(0));
  let path: CreatedUpdatePath | undefined;
  if (withPath) {
    const leaf = ownLeafNode(state);
    path = await createUpdatePath({
      cs,
      tree: applied.tree,
      leafIndex: own,
      groupId: state.context.groupId,
      leaf: {
        signatureKey: leaf.signatureKey,
        credential: leaf.credential,
        capabilities: leaf.capabilities,
        extensions: leaf.extensions,
      },
      signaturePrivateKey: state.signaturePrivateKey,
      excludedLeaves: applied.added.map((a) => a.leafIndex),
      context: (th) => groupContextBytes({ ...provisional, treeHash: th }),
    });
  }
  const tree = path?.tree ?? applied.tree;
  const th = path?.treeHash ?? (await treeHash(tree, cs.hash));

  // §12.4.1: the commit's content, signed with the current epoch's GroupContext.
  const commitProposals: ProposalOrRef[] = [
    ...byRef.map((p): ProposalOrRef => ({ type: ProposalOrRefTypes.reference, reference: p.ref })),
    ...byValue.map((proposal): ProposalOrRef => ({ type: ProposalOrRefTypes.proposal, proposal })),
  ];
  const content: FramedContent = {
    groupId: state.context.groupId,
    epoch: state.context.epoch,
    sender: me,
    authenticatedData: options.authenticatedData ?? new Uint8Array(0),
    contentType: ContentTypes.commit,
    commit: { proposals: commitProposals, path: path?.updatePath },
  };
  const wireFormat = WireFormats.mls_public_message;
  const signature = await signFramedContent(
    cs,
    state.signaturePrivateKey,
    wireFormat,
    content,
    state.context,
  );

  // §8, §8.2: the new epoch.
  const psk = await pskSecret(cs, applied.psks);
  const commitSecret = path?.commitSecret ?? zeroSecret(cs);
  const next = await nextEpoch({
    cs,
    current: state.context,
    interimTranscriptHash: state.interimTranscriptHash,
    wireFormat,
    content,
    signature,
    extensions: applied.extensions,
    treeHash: th,
    initSecret: state.keys.initSecret,
    commitSecret,
    pskSecret: psk,
    welcome: applied.added.length > 0,
  });
  commitSecret.fill(0);
  const tag = await confirmationTag(cs, next.secrets.confirmationKey, next.context.confirmedTranscriptHash);
  // §6.2: the membership tag uses the current epoch's membership_key.
  const message = await toPublicMessage(
    cs,
    { wireFormat, content, auth: { signature, confirmationTag: tag } },
    state.context,
    state.keys.membershipKey,
  );

  // §12.4.3: the new epoch's GroupInfo (for the Welcome and the commit bundle).
  const groupInfo = await bundleGroupInfo(cs, {
    context: next.context,
    tree,
    confirmationTag: tag,
    externalSecret: next.secrets.externalSecret,
    signer: own,
    signaturePrivateKey: state.signaturePrivateKey,
  });
  let welcome: Uint8Array | undefined;
  if (applied.added.length > 0) {
    const bytesOf = new Map((options.adds ?? []).map((a) => [a.keyPackage, a.bytes] as const));
    const w = await createWelcome(cs, {
      groupInfo,
      joinerSecret: next.joinerSecret,
      pskSecret: psk,
      ...(next.welcomeSecret === undefined ? {} : { welcomeSecret: next.welcomeSecret }),
      pskIds: applied.psks.map((p) => p.id),
      joiners: applied.added.map((a) => {
        const bytes = bytesOf.get(a.keyPackage);
        return {
          keyPackage: a.keyPackage,
          ...(bytes === undefined ? {} : { keyPackageBytes: bytes }),
          pathSecret: path === undefined ? undefined : pathSecretForJoiner(path, own, a.leafIndex),
        };
      }),
    });
    welcome = encodeMlsMessage({ wireFormat: WireFormats.mls_welcome, welcome: w });
  }
  next.joinerSecret.fill(0);
  next.welcomeSecret?.fill(0);
  psk.fill(0);

  // Keys we held whose node is unchanged stay; our leaf and path nodes get the path's new keys.
  const privateKeys = privateKeysOf(keysStillInTree(tree, state.nodeKeys));
  for (const [x, k] of path?.privateKeys ?? []) privateKeys.set(x, k);
  for (const s of path?.pathSecrets.values() ?? []) s.fill(0);
  const newState = await enterEpoch(state, {
    cs,
    context: next.context,
    tree,
    ownLeaf: own,
    privateKeys,
    signaturePrivateKey: state.signaturePrivateKey,
    secrets: next.secrets,
    confirmationTag: tag,
  });
  return {
    state: newState,
    commit: encodeMlsMessage({ wireFormat, publicMessage: message }),
    welcome,
    groupInfo: groupInfoMessage(groupInfo),
    groupInfoObject: groupInfo,
  };
}
