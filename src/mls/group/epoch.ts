/**
 * Moving a group to its next epoch (RFC 9420 §8, §8.2, §12.4.1/§12.4.2), shared by the member
 * that commits, the members that process the commit, and an external joiner:
 *
 *   confirmed_transcript_hash_[n] = Hash(interim_[n-1] || ConfirmedTranscriptHashInput)
 *   GroupContext_[n] = { …, epoch + 1, tree_hash_[n], confirmed_transcript_hash_[n], extensions_[n] }
 *   epoch secrets from init_secret_[n-1], commit_secret, psk_secret and GroupContext_[n]
 *   confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash_[n])
 *   interim_[n] = Hash(confirmed_[n] || confirmation_tag)
 */
import type { CiphersuiteImpl } from "../crypto/types.js";
import { confirmedTranscriptHashInput } from "../framing/authenticatedContent.js";
import type { FramedContent } from "../framing/types.js";
import type { Extension } from "../keypackage/types.js";
import { nextEpochSecrets, type EpochSecrets } from "../keyschedule/schedule.js";
import { confirmedTranscriptHash, interimTranscriptHash } from "../keyschedule/transcript.js";
import type { GroupContext } from "../keyschedule/types.js";
import type { RatchetTree } from "../tree/types.js";
import { epochKeysOf, rotatePastEpochs, secretTreeOf, type GroupState, type NodeKey } from "./state.js";

/** §12.4.1 the provisional GroupContext: next epoch, new extensions, tree hash filled in later. */
export function provisionalContext(
  current: GroupContext,
  extensions: readonly Extension[],
  treeHash: Uint8Array,
): GroupContext {
  return {
    version: current.version,
    ciphersuite: current.ciphersuite,
    groupId: current.groupId,
    epoch: current.epoch + 1n,
    treeHash,
    confirmedTranscriptHash: current.confirmedTranscriptHash,
    extensions,
  };
}

/** What the new epoch is computed from. */
export interface NextEpochInput {
  readonly cs: CiphersuiteImpl;
  readonly current: GroupContext;
  /** interim_transcript_hash_[n-1]. */
  readonly interimTranscriptHash: Uint8Array;
  readonly wireFormat: number;
  /** The commit's FramedContent and its signature (§8.2 ConfirmedTranscriptHashInput). */
  readonly content: FramedContent;
  readonly signature: Uint8Array;
  readonly extensions: readonly Extension[];
  readonly treeHash: Uint8Array;
  /** init_secret_[n-1] (or the external init secret, §8.3). */
  readonly initSecret: Uint8Array;
  readonly commitSecret: Uint8Array;
  readonly pskSecret: Uint8Array;
  /** Also derive welcome_secret (§8), for a Welcome to the members the commit adds. */
  readonly welcome?: boolean;
}

/** The new epoch's GroupContext, joiner_secret and secrets. */
export interface NextEpoch {
  readonly context: GroupContext;
  readonly joinerSecret: Uint8Array;
  readonly secrets: EpochSecrets;
  /** welcome_secret, when `welcome` was asked for. */
  readonly welcomeSecret: Uint8Array | undefined;
}

/** §8.2 / §8: the next epoch's GroupContext and secrets. */
export async function nextEpoch(input: NextEpochInput): Promise<NextEpoch> {
  const { cs } = input;
  const confirmed = await confirmedTranscriptHash(
    cs,
    input.interimTranscriptHash,
    confirmedTranscriptHashInput({
      wireFormat: input.wireFormat,
      content: input.content,
      auth: { signature: input.signature },
    }),
  );
  const context: GroupContext = {
    ...provisionalContext(input.current, input.extensions, input.treeHash),
    confirmedTranscriptHash: confirmed,
  };
  const { joinerSecret, secrets, welcomeSecret } = await nextEpochSecrets(cs, {
    initSecret: input.initSecret,
    commitSecret: input.commitSecret,
    pskSecret: input.pskSecret,
    groupContext: context,
    welcome: input.welcome === true,
  });
  return { context, joinerSecret, secrets, welcomeSecret };
}

/** The parts of a new epoch's state (§8.2: the confirmation tag and interim hash are computed here). */
export interface EpochParts {
  readonly cs: CiphersuiteImpl;
  readonly context: GroupContext;
  readonly tree: RatchetTree;
  readonly ownLeaf: number;
  /** Private keys of tree nodes we hold in the new tree, by node index. */
  readonly privateKeys: ReadonlyMap<number, Uint8Array>;
  readonly signaturePrivateKey: Uint8Array;
  readonly secrets: EpochSecrets;
  readonly confirmationTag: Uint8Array;
}

/** Our node keys in `tree`: each private key with the public key of its node (blank nodes dropped). */
export function nodeKeysIn(
  tree: RatchetTree,
  privateKeys: ReadonlyMap<number, Uint8Array>,
): Map<number, NodeKey> {
  const out = new Map<number, NodeKey>();
  for (const [x, privateKey] of privateKeys) {
    const n = tree[x];
    if (n === undefined) continue;
    out.set(x, { privateKey, publicKey: n.nodeType === 1 ? n.leaf.encryptionKey : n.parent.encryptionKey });
  }
  return out;
}

/** The private keys of `keys`, by node index. */
export function privateKeysOf(keys: ReadonlyMap<number, NodeKey>): Map<number, Uint8Array> {
  return new Map([...keys].map(([x, k]) => [x, k.privateKey] as const));
}

/**
 * The state of a new epoch: its secret tree from encryption_secret (then zeroed), the interim
 * transcript hash, no pending proposals, and `previous`'s epoch kept as a past epoch (§9.2).
 */
export async function enterEpoch(previous: GroupState | undefined, p: EpochParts): Promise<GroupState> {
  const interim = await interimTranscriptHash(p.cs, p.context.confirmedTranscriptHash, p.confirmationTag);
  return {
    cs: p.cs,
    context: p.context,
    tree: p.tree,
    ownLeaf: p.ownLeaf,
    nodeKeys: nodeKeysIn(p.tree, p.privateKeys),
    signaturePrivateKey: p.signaturePrivateKey,
    keys: epochKeysOf(p.secrets),
    secretTree: secretTreeOf(p.cs, p.tree, p.secrets.encryptionSecret),
    confirmationTag: p.confirmationTag,
    interimTranscriptHash: interim,
    pending: [],
    pastEpochs: previous === undefined ? [] : rotatePastEpochs(previous),
    active: true,
  };
}
