/**
 * RFC 9420 §12.4.3.2 joining a group by external commit, from a GroupInfo that carries an
 * `external_pub` extension:
 *
 * 1. the GroupInfo is decoded strictly, its ratchet tree (extension or given) validated like a
 *    joiner's (§12.4.3.1) and its signature verified;
 * 2. kem_output and init_secret from the external public key (§8.3);
 * 3. proposals, all by value: the ExternalInit, and optionally a Remove of our own old leaf
 *    (a resync: its credential must be ours);
 * 4. our leaf goes where an Add would put it, with an UpdatePath (always required);
 * 5. the commit is signed as sender new_member_commit and sent as a PublicMessage without
 *    membership tag; the new epoch follows from the GroupInfo's confirmed transcript hash and
 *    confirmation tag (interim transcript hash, §8.2).
 *
 * Members process such a commit with processCommit.ts (sender new_member_commit).
 */
import { ErrorCode } from "../../errors.js";
import { decodeExact, encode } from "../codec/index.js";
import { writeCredential } from "../credential/codec.js";
import type { AuthenticationService } from "../credential/authentication.js";
import { bytesEqual } from "../crypto/bytes.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
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
  type Sender,
} from "../framing/types.js";
import { ExtensionTypes, MLS10 } from "../keypackage/types.js";
import { pskSecret } from "../keyschedule/psk.js";
import { externalInitExport, groupContextBytes } from "../keyschedule/schedule.js";
import { confirmationTag, interimTranscriptHash } from "../keyschedule/transcript.js";
import { addLeaf, getLeaf, leafCount, nextLeafIndex } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";
import { validateRatchetTree } from "../tree/validate.js";
import { createUpdatePath, type LeafTemplate } from "../treekem/updatePath.js";
import { applyProposals, type PskLookup } from "./applyProposals.js";
import { readGroupInfo } from "./codec.js";
import { decodeAs, fail, recode } from "../validation/errors.js";
import { enterEpoch, nextEpoch, provisionalContext } from "./epoch.js";
import { findExtension, readExternalPub, readRatchetTreeExtension } from "./extensions.js";
import { bundleGroupInfo, verifyGroupInfoSignature } from "./groupInfo.js";
import { decodeMlsMessage, encodeMlsMessage } from "./mlsMessage.js";
import type { GroupState } from "./state.js";
import type { GroupInfo } from "./types.js";

const G = ErrorCode.InvalidGroupInfo;

/** A GroupInfo as MLSMessage(GroupInfo) (§6) or bare (as CoreCrypto's `GroupInfo` type holds it). */
export function parseGroupInfo(bytes: Uint8Array): GroupInfo {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("expected the GroupInfo as a Uint8Array");
  // MLSMessage header: version mls10 (0x0001), wire format mls_group_info (0x0004).
  if (
    bytes.length >= 4 &&
    bytes[0] === 0 &&
    bytes[1] === 1 &&
    bytes[2] === 0 &&
    bytes[3] === WireFormats.mls_group_info
  ) {
    const m = decodeMlsMessage(bytes, G, "the GroupInfo");
    if (m.wireFormat !== WireFormats.mls_group_info) fail(G, "§6 wire_format", `wire format ${m.wireFormat}`);
    return m.groupInfo;
  }
  return decodeAs(G, "the GroupInfo", () => decodeExact(bytes, readGroupInfo));
}

export interface ExternalCommitInput {
  /** MLSMessage(GroupInfo) or a bare GroupInfo, with the external_pub extension. */
  readonly groupInfo: Uint8Array;
  /** The ratchet tree when the GroupInfo has no ratchet_tree extension. */
  readonly ratchetTree?: RatchetTree;
  /** Our new leaf's credential, signature key, capabilities and extensions. */
  readonly leaf: LeafTemplate;
  readonly signaturePrivateKey: Uint8Array;
  /** A resync: the leaf index of our old leaf, removed by the same commit (its credential must be ours). */
  readonly removeLeaf?: number;
  readonly authenticatedData?: Uint8Array;
  /** Session clock, seconds since the Unix epoch (§7.3 lifetimes of the tree's leaves). */
  readonly now: bigint;
  readonly authenticationService: AuthenticationService;
  readonly psk?: PskLookup;
}

export interface ExternalCommit {
  /** Our state in the new epoch (keep it once the Delivery Service accepted the commit). */
  readonly state: GroupState;
  /** MLSMessage(PublicMessage) carrying the external commit. */
  readonly commit: Uint8Array;
  /** MLSMessage(GroupInfo) of the new epoch (ratchet_tree, external_pub). */
  readonly groupInfo: Uint8Array;
}

/** §12.4.3.2 the tree and verified GroupInfo an external commit starts from. */
async function checkedGroupInfo(
  cs: CiphersuiteImpl,
  ciphersuite: number,
  input: ExternalCommitInput,
): Promise<{ gi: GroupInfo; tree: RatchetTree; externalPub: Uint8Array }> {
  const gi = parseGroupInfo(input.groupInfo);
  const gc = gi.groupContext;
  // §12.4.3.2: the group uses our suite and version.
  if (gc.ciphersuite !== ciphersuite)
    fail(G, "§12.4.3.2 ciphersuite", `the group uses suite ${gc.ciphersuite}, we ${ciphersuite}`);
  if (gc.version !== MLS10) fail(G, "§12.4.3.2 version", `protocol version ${gc.version}`);
  const ext = findExtension(gi.extensions, ExtensionTypes.ratchet_tree);
  const tree =
    ext !== undefined
      ? decodeAs(G, "the ratchet_tree extension", () => readRatchetTreeExtension(ext.extensionData))
      : (input.ratchetTree ??
        fail(G, "§12.4.3.3 ratchet_tree", "no ratchet_tree extension and no tree given"));
  // §12.4.3.2 (as §12.4.3.1): the GroupInfo signature, then the tree's integrity.
  await verifyGroupInfoSignature(cs, gi, tree, G, "§12.4.3.2");
  try {
    await validateRatchetTree(tree, gc.treeHash, {
      cs,
      ciphersuite: gc.ciphersuite,
      groupId: gc.groupId,
      extensions: gc.extensions,
      authenticationService: input.authenticationService,
      now: input.now,
      code: G,
    });
  } catch (e) {
    recode(G, e);
  }
  const pub = findExtension(gi.extensions, ExtensionTypes.external_pub);
  // §12.4.3.2: an external joiner needs the group's external public key.
  if (pub === undefined) fail(G, "§12.4.3.2 external_pub", "the GroupInfo has no external_pub extension");
  const externalPub = decodeAs(G, "the external_pub extension", () => readExternalPub(pub.extensionData));
  return { gi, tree, externalPub };
}

/** §12.4.3.2: an external commit into the group a GroupInfo describes. */
export async function createExternalCommit(
  cs: CiphersuiteImpl,
  ciphersuite: number,
  input: ExternalCommitInput,
): Promise<ExternalCommit> {
  const { gi, tree: groupTree, externalPub } = await checkedGroupInfo(cs, ciphersuite, input);
  const gc = gi.groupContext;
  const me: Sender = { senderType: SenderTypes.new_member_commit };
  // §8.3: kem_output for the ExternalInit, and the init_secret it stands for.
  const init = await externalInitExport(cs, externalPub).catch((e: unknown) =>
    fail(
      G,
      "§12.4.3.2 external_pub",
      `the external public key is unusable: ${e instanceof Error ? e.message : String(e)}`,
    ),
  );
  const proposals: Proposal[] = [{ proposalType: ProposalTypes.external_init, kemOutput: init.kemOutput }];
  if (input.removeLeaf !== undefined) {
    const old = input.removeLeaf < leafCount(groupTree) ? getLeaf(groupTree, input.removeLeaf) : undefined;
    // §12.4.3.2: a resync removes a leaf holding our own credential.
    const ours = encode(input.leaf.credential, writeCredential);
    if (old === undefined || !bytesEqual(encode(old.credential, writeCredential), ours))
      fail(G, "§12.4.3.2 resync_credential", `leaf ${input.removeLeaf} is not ours to remove`);
    proposals.push({ proposalType: ProposalTypes.remove, removed: input.removeLeaf });
  }
  const applied = await applyProposals(
    proposals.map((proposal) => ({ proposal, sender: me, ref: undefined })),
    {
      cs,
      context: gc,
      tree: groupTree,
      committer: me,
      authenticationService: input.authenticationService,
      now: input.now,
      code: G,
      psk: input.psk ?? (() => undefined),
    },
  );
  // §12.4.3.2: our leaf takes the slot an Add would; the path then replaces this placeholder.
  const ownLeaf = nextLeafIndex(applied.tree);
  const staged = addLeaf(applied.tree, {
    ...input.leaf,
    encryptionKey: new Uint8Array(0),
    leafNodeSource: 3,
    lifetime: undefined,
    parentHash: new Uint8Array(0),
    signature: new Uint8Array(0),
  }).tree;
  const provisional = provisionalContext(gc, applied.extensions, new Uint8Array(0));
  const path = await createUpdatePath({
    cs,
    tree: staged,
    leafIndex: ownLeaf,
    groupId: gc.groupId,
    leaf: input.leaf,
    signaturePrivateKey: input.signaturePrivateKey,
    context: (th) => groupContextBytes({ ...provisional, treeHash: th }),
  });

  const content: FramedContent = {
    groupId: gc.groupId,
    epoch: gc.epoch,
    sender: me,
    authenticatedData: input.authenticatedData ?? new Uint8Array(0),
    contentType: ContentTypes.commit,
    commit: {
      proposals: proposals.map((proposal) => ({ type: ProposalOrRefTypes.proposal, proposal })),
      path: path.updatePath,
    },
  };
  const wireFormat = WireFormats.mls_public_message;
  const signature = await signFramedContent(cs, input.signaturePrivateKey, wireFormat, content, gc);
  // §8.2: the interim transcript hash of the GroupInfo's epoch, from its confirmation tag.
  const interim = await interimTranscriptHash(cs, gc.confirmedTranscriptHash, gi.confirmationTag);
  const psk = await pskSecret(cs, applied.psks);
  const next = await nextEpoch({
    cs,
    current: gc,
    interimTranscriptHash: interim,
    wireFormat,
    content,
    signature,
    extensions: applied.extensions,
    treeHash: path.treeHash,
    initSecret: init.initSecret,
    commitSecret: path.commitSecret,
    pskSecret: psk,
  });
  init.initSecret.fill(0);
  path.commitSecret.fill(0);
  psk.fill(0);
  next.joinerSecret.fill(0);
  for (const s of path.pathSecrets.values()) s.fill(0);
  const tag = await confirmationTag(cs, next.secrets.confirmationKey, next.context.confirmedTranscriptHash);
  const message = await toPublicMessage(
    cs,
    { wireFormat, content, auth: { signature, confirmationTag: tag } },
    gc,
    undefined,
  );
  const state = await enterEpoch(undefined, {
    cs,
    context: next.context,
    tree: path.tree,
    ownLeaf,
    privateKeys: path.privateKeys,
    signaturePrivateKey: input.signaturePrivateKey,
    secrets: next.secrets,
    confirmationTag: tag,
  });
  const groupInfo = await bundleGroupInfo(cs, {
    context: next.context,
    tree: path.tree,
    confirmationTag: tag,
    externalSecret: state.keys.externalSecret,
    signer: ownLeaf,
    signaturePrivateKey: input.signaturePrivateKey,
  });
  return {
    state,
    commit: encodeMlsMessage({ wireFormat, publicMessage: message }),
    groupInfo: encodeMlsMessage({ wireFormat: WireFormats.mls_group_info, groupInfo }),
  };
}
