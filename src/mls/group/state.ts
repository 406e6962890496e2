/**
 * The state of one member in one group (RFC 9420 §8–§12), immutable: every operation returns a
 * new `GroupState` (stage, then merge). Its binary encoding is in stateEncoding.ts.
 *
 * What a member keeps between messages:
 * - the §8.1 GroupContext and the §7 ratchet tree of the current epoch;
 * - its own leaf index, the private keys of the tree nodes it knows (its leaf and the nodes of
 *   its direct path a commit gave it, §7.4), and its signature private key;
 * - the current epoch's secrets (§8 table 4) but encryption_secret, which lives on as the §9
 *   secret tree; the confirmation tag and interim transcript hash (§8.2);
 * - proposals received in this epoch, by ProposalRef (§12.1, §5.2), for the next commit;
 * - for up to `MAX_PAST_EPOCHS` previous epochs, what decrypts a late application message:
 *   that epoch's GroupContext, sender_data_secret, secret tree and leaves (§9.2 retention);
 * - whether it is still a member (a commit that removes it ends the membership, §12.4.2).
 */
import { bytesEqual } from "../crypto/bytes.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import type { Proposal, Sender } from "../framing/types.js";
import type { PreSharedKeyId } from "../keyschedule/types.js";
import type { LeafNode } from "../keypackage/types.js";
import type { EpochSecrets } from "../keyschedule/schedule.js";
import { SecretTree } from "../keyschedule/secretTree.js";
import type { GroupContext } from "../keyschedule/types.js";
import { leafCount, members } from "../tree/tree.js";
import type { RatchetTree } from "../tree/types.js";

/** Previous epochs whose receiver data is kept, like CoreCrypto's default `max_past_epochs`. */
export const MAX_PAST_EPOCHS = 3;

/** The secrets of the current epoch a member keeps (§8 table 4); encryption_secret is in the secret tree. */
export type EpochKeys = Omit<EpochSecrets, "encryptionSecret">;

/** The private key of a tree node we hold, with the public key it belongs to (serialized, RFC 9180). */
export interface NodeKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A proposal received in this epoch (§12.1), kept for the next commit under its ProposalRef (§5.2). */
export interface PendingProposal {
  readonly ref: Uint8Array;
  readonly sender: Sender;
  readonly proposal: Proposal;
}

/** What decrypts a late application message of a previous epoch (§9.2). */
export interface PastEpoch {
  readonly context: GroupContext;
  readonly senderDataSecret: Uint8Array;
  /** That epoch's resumption_psk (§8.6), for resumption PSKs naming it. */
  readonly resumptionPsk: Uint8Array;
  readonly secretTree: SecretTree;
  /** That epoch's leaves by leaf index (`undefined`: blank). */
  readonly leaves: readonly (LeafNode | undefined)[];
}

export interface GroupState {
  /** The suite of `context.ciphersuite`, with the provider the state was made or read with. */
  readonly cs: CiphersuiteImpl;
  readonly context: GroupContext;
  readonly tree: RatchetTree;
  readonly ownLeaf: number;
  /** Private keys of tree nodes, by node index (our leaf's among them). */
  readonly nodeKeys: ReadonlyMap<number, NodeKey>;
  readonly signaturePrivateKey: Uint8Array;
  readonly keys: EpochKeys;
  readonly secretTree: SecretTree;
  readonly confirmationTag: Uint8Array;
  readonly interimTranscriptHash: Uint8Array;
  /** Proposals received in this epoch, in arrival order. */
  readonly pending: readonly PendingProposal[];
  /** Previous epochs, newest first, at most `MAX_PAST_EPOCHS`. */
  readonly pastEpochs: readonly PastEpoch[];
  /** False once a commit removed us: the state can then only be wiped. */
  readonly active: boolean;
}

/** The secrets a member keeps of `secrets` (all but encryption_secret, which seeds the secret tree). */
export function epochKeysOf(secrets: EpochSecrets): EpochKeys {
  return {
    senderDataSecret: secrets.senderDataSecret,
    exporterSecret: secrets.exporterSecret,
    externalSecret: secrets.externalSecret,
    confirmationKey: secrets.confirmationKey,
    membershipKey: secrets.membershipKey,
    resumptionPsk: secrets.resumptionPsk,
    epochAuthenticator: secrets.epochAuthenticator,
    initSecret: secrets.initSecret,
  };
}

/** The secret tree of an epoch (§9) from its encryption_secret, which is then zeroed. */
export function secretTreeOf(
  cs: CiphersuiteImpl,
  tree: RatchetTree,
  encryptionSecret: Uint8Array,
): SecretTree {
  const st = SecretTree.create(cs, leafCount(tree), encryptionSecret);
  encryptionSecret.fill(0);
  return st;
}

/** The leaves of `tree` by leaf index. */
export function leavesOf(tree: RatchetTree): (LeafNode | undefined)[] {
  const out = new Array<LeafNode | undefined>(leafCount(tree)).fill(undefined);
  for (const m of members(tree)) out[m.leafIndex] = m.leaf;
  return out;
}

/** The receiver data of `state`'s epoch, as kept once the group moves on (§9.2). */
export function pastEpochOf(state: GroupState): PastEpoch {
  return {
    context: state.context,
    senderDataSecret: state.keys.senderDataSecret,
    resumptionPsk: state.keys.resumptionPsk,
    secretTree: state.secretTree,
    leaves: leavesOf(state.tree),
  };
}

/**
 * The past epochs after moving on from `state`'s epoch: its receiver data first, the oldest
 * beyond `MAX_PAST_EPOCHS` dropped.
 */
export function rotatePastEpochs(state: GroupState): PastEpoch[] {
  const all = [pastEpochOf(state), ...state.pastEpochs];
  // §9.2: the secret tree of an epoch no longer kept is zeroed (a state still holding it
  // reports `isIntact` false and must be read again from its encoding).
  for (const dropped of all.slice(MAX_PAST_EPOCHS)) dropped.secretTree.destroy();
  return all.slice(0, MAX_PAST_EPOCHS);
}

/**
 * The node keys still valid in `tree`: those whose node is non-blank and carries the public key
 * the private key belongs to. A commit that blanks or replaces a node thereby drops its key.
 */
export function keysStillInTree(tree: RatchetTree, keys: ReadonlyMap<number, NodeKey>): Map<number, NodeKey> {
  const out = new Map<number, NodeKey>();
  for (const [x, k] of keys) {
    const n = tree[x];
    if (n === undefined) continue;
    const pub = n.nodeType === 1 ? n.leaf.encryptionKey : n.parent.encryptionKey;
    if (bytesEqual(pub, k.publicKey)) out.set(x, k);
  }
  return out;
}

/** Our own leaf node (always non-blank while we are active). */
export function ownLeafNode(state: GroupState): LeafNode {
  const n = state.tree[state.ownLeaf * 2];
  if (n?.nodeType !== 1) throw new TypeError("our own leaf is blank");
  return n.leaf;
}

/**
 * True when every secret tree the state holds is still live. Operations that consume a ratchet
 * key retire the tree they started from (§9.2 deletion); a state kept elsewhere (a cache) whose
 * tree was retired by a later operation must be read again from its encoding.
 */
export function isIntact(state: GroupState): boolean {
  const live = (t: SecretTree): boolean => {
    try {
      t.parts();
      return true;
    } catch {
      return false;
    }
  };
  return live(state.secretTree) && state.pastEpochs.every((p) => live(p.secretTree));
}

/**
 * §8.4 / §8.6 the value of a PSK a commit or Welcome names: a resumption PSK of this group's
 * current or a kept past epoch, else whatever `external` (the application's PSK store) holds.
 */
export function pskLookupOf(
  state: GroupState,
  external: ((id: PreSharedKeyId) => Uint8Array | undefined) | undefined,
): (id: PreSharedKeyId) => Uint8Array | undefined {
  return (id) => {
    if (id.pskType === 2 && bytesEqual(id.pskGroupId, state.context.groupId)) {
      if (id.pskEpoch === state.context.epoch) return state.keys.resumptionPsk;
      return state.pastEpochs.find((p) => p.context.epoch === id.pskEpoch)?.resumptionPsk;
    }
    return external?.(id);
  };
}
