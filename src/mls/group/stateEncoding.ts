/**
 * Our versioned binary encoding of a `GroupState` (state.ts), in the TLS presentation language
 * of RFC 9420 §2.1 (`<V>`: §2.1.2 variable-length vectors). Secret: it holds private keys and
 * epoch secrets; the keystore stores it encrypted at rest.
 *
 *   struct {
 *     opaque engine<V> = "mls-keypackages";
 *     uint16 format_version = 1;
 *     GroupContext group_context;              // §8.1 (its cipher_suite is the state's)
 *     optional<Node> ratchet_tree<V>;          // §12.4.3.3
 *     uint32 own_leaf;
 *     NodeKey node_keys<V>;                    // ascending by node
 *     opaque signature_private_key<V>;
 *     EpochKeys keys;
 *     SecretTreeState secret_tree;             // keyschedule/secretTree.ts
 *     opaque confirmation_tag<V>;
 *     opaque interim_transcript_hash<V>;
 *     PendingProposal pending<V>;              // arrival order
 *     PastEpoch past_epochs<V>;                // newest first, at most 3
 *     uint8 active;                            // 0 or 1
 *   } GroupStateV1;
 *
 *   struct { uint32 node; opaque private_key<V>; opaque public_key<V>; } NodeKey;
 *   struct { opaque sender_data_secret<V>; opaque exporter_secret<V>; opaque external_secret<V>;
 *            opaque confirmation_key<V>; opaque membership_key<V>; opaque resumption_psk<V>;
 *            opaque epoch_authenticator<V>; opaque init_secret<V>; } EpochKeys;
 *   struct { opaque proposal_ref<V>; Sender sender; Proposal proposal; } PendingProposal;   // §6, §12.1
 *   struct { GroupContext context; opaque sender_data_secret<V>; opaque resumption_psk<V>;
 *            SecretTreeState secret_tree; PastLeaf leaves<V>; } PastEpoch;
 *   struct { uint8 kind;                       // 0: same LeafNode as the current tree's leaf
 *            select (kind) { case 0: struct{};  //    at this index; 1: blank; 2: given
 *                            case 1: struct{};
 *                            case 2: LeafNode leaf; }; } PastLeaf;
 *
 * A state is read back only if it is exactly this: another engine name or format version, a
 * malformed field, a secret of the wrong size, or trailing bytes is refused.
 */
import { ErrorCode } from "../../errors.js";
import { DecodeError, Reader, Writer } from "../codec/index.js";
import { bytesEqual } from "../crypto/bytes.js";
import type { CiphersuiteImpl } from "../crypto/types.js";
import { readProposal, readSender, writeProposal, writeSender } from "../framing/codec.js";
import { readLeafNode, writeLeafNode } from "../keypackage/codec.js";
import type { LeafNode } from "../keypackage/types.js";
import { readGroupContext, writeGroupContext } from "../keyschedule/codec.js";
import { encodeSecretTreeState, readSecretTreeState } from "../keyschedule/secretTree.js";
import {
  encodedRatchetTree as nodeEncodedRatchetTree,
  readRatchetTreeRemembered,
  rememberRatchetTreeEncoding,
} from "../tree/nodeEncoding.js";
import { leafCount } from "../tree/tree.js";
import { decodeAs, fail } from "../validation/errors.js";
import {
  leavesOf,
  MAX_PAST_EPOCHS,
  type EpochKeys,
  type GroupState,
  type NodeKey,
  type PastEpoch,
  type PendingProposal,
} from "./state.js";

export const STATE_ENGINE = "mls-keypackages";
export const STATE_FORMAT_VERSION = 1;

const ENGINE_BYTES = new TextEncoder().encode(STATE_ENGINE);

const EPOCH_KEY_NAMES = [
  "senderDataSecret",
  "exporterSecret",
  "externalSecret",
  "confirmationKey",
  "membershipKey",
  "resumptionPsk",
  "epochAuthenticator",
  "initSecret",
] as const satisfies ReadonlyArray<keyof EpochKeys>;

/** The §12.4.3.3 `optional<Node> ratchet_tree<V>` encoding of `tree` (computed once per tree). */
export const encodedRatchetTree = nodeEncodedRatchetTree;

/** Records `bytes` as the encoding of `tree` (a tree just decoded from canonical bytes). */
export const rememberTreeEncoding = rememberRatchetTreeEncoding;

function writeEpochKeys(w: Writer, k: EpochKeys): void {
  for (const name of EPOCH_KEY_NAMES) w.vec(k[name]);
}

/** The encoding of `state` (see the module comment). */
export function encodeGroupState(state: GroupState): Uint8Array {
  const w = new Writer(groupStateSizeHint(state));
  writeGroupState(w, state);
  return w.finish();
}

/** A capacity for a writer of `state`'s encoding: its tree's (known) encoding and room for the rest. */
export function groupStateSizeHint(state: GroupState): number {
  return encodedRatchetTree(state.tree).length + 4096;
}

/** Writes the encoding of `state` into `w` (e.g. inside the caller's own vector: no copy). */
export function writeGroupState(w: Writer, state: GroupState): void {
  const tree = encodedRatchetTree(state.tree);
  w.vec(ENGINE_BYTES).u16(STATE_FORMAT_VERSION);
  writeGroupContext(w, state.context);
  w.raw(tree);
  w.u32(state.ownLeaf);
  w.vecOf(
    [...state.nodeKeys].sort((a, b) => a[0] - b[0]),
    (w2, [x, k]) => {
      w2.u32(x).vec(k.privateKey).vec(k.publicKey);
    },
  );
  w.vec(state.signaturePrivateKey);
  writeEpochKeys(w, state.keys);
  encodeSecretTreeState(w, state.secretTree);
  w.vec(state.confirmationTag).vec(state.interimTranscriptHash);
  w.vecOf(state.pending, (w2, p) => {
    w2.vec(p.ref);
    writeSender(w2, p.sender);
    writeProposal(w2, p.proposal);
  });
  const current = leavesOf(state.tree);
  w.vecOf(state.pastEpochs, (w2, p) => {
    writeGroupContext(w2, p.context);
    w2.vec(p.senderDataSecret).vec(p.resumptionPsk);
    encodeSecretTreeState(w2, p.secretTree);
    w2.vecOf([...p.leaves.keys()], (w3, i) => {
      const leaf = p.leaves[i];
      if (leaf === undefined) w3.u8(1);
      else if (leaf === current[i]) w3.u8(0);
      else {
        w3.u8(2);
        writeLeafNode(w3, leaf);
      }
    });
  });
  w.u8(state.active ? 1 : 0);
}

function bad(message: string): never {
  throw new DecodeError("state group_state", message);
}

function readSecret(r: Reader, size: number, what: string): Uint8Array {
  const s = r.vec();
  if (s.length !== size) bad(`${what} of ${s.length} bytes, expected ${size}`);
  return s.slice();
}

function readEpochKeys(r: Reader, nh: number): EpochKeys {
  const out: Partial<Record<keyof EpochKeys, Uint8Array>> = {};
  for (const name of EPOCH_KEY_NAMES) out[name] = readSecret(r, nh, name);
  return out as EpochKeys;
}

function readPastLeaves(r: Reader, current: readonly (LeafNode | undefined)[]): (LeafNode | undefined)[] {
  let i = 0;
  return r.vecOf((r2) => {
    const kind = r2.u8();
    const at = i++;
    if (kind === 1) return undefined;
    if (kind === 2) return readLeafNode(r2);
    if (kind !== 0) bad(`past leaf kind ${kind}`);
    const leaf = current[at];
    if (leaf === undefined) bad(`past leaf ${at} refers to a blank current leaf`);
    return leaf;
  });
}

/**
 * Reads a state written by `encodeGroupState` for suite `cs`. Anything else is refused with
 * `UnsupportedConversationState` naming what was wrong.
 */
export function decodeGroupState(bytes: Uint8Array, cs: CiphersuiteImpl, ciphersuite: number): GroupState {
  return decodeAs(ErrorCode.UnsupportedConversationState, "the stored group state does not decode", () => {
    const r = new Reader(bytes);
    const engine = r.vec();
    if (!bytesEqual(engine, ENGINE_BYTES))
      fail(
        ErrorCode.UnsupportedConversationState,
        "state engine",
        "the group state was written by another engine",
      );
    const version = r.u16();
    if (version !== STATE_FORMAT_VERSION)
      fail(
        ErrorCode.UnsupportedConversationState,
        "state format_version",
        `group state format ${version} is not ${STATE_FORMAT_VERSION}`,
      );
    const context = readGroupContext(r);
    if (context.ciphersuite !== ciphersuite)
      bad(`cipher suite ${context.ciphersuite}, expected ${ciphersuite}`);
    const tree = readRatchetTreeRemembered(r);
    const ownLeaf = r.u32();
    if (ownLeaf >= leafCount(tree)) bad(`own leaf ${ownLeaf} outside the tree`);
    const nodeKeys = new Map<number, NodeKey>();
    for (const [x, k] of r.vecOf(
      (r2) => [r2.u32(), { privateKey: r2.vec().slice(), publicKey: r2.vec().slice() }] as const,
    )) {
      if (nodeKeys.has(x)) bad(`node key ${x} twice`);
      nodeKeys.set(x, k);
    }
    const signaturePrivateKey = r.vec().slice();
    const nh = cs.kdf.size;
    const keys = readEpochKeys(r, nh);
    const secretTree = readSecretTreeState(r, cs);
    const confirmationTag = readSecret(r, nh, "confirmation_tag");
    const interimTranscriptHash = readSecret(r, nh, "interim_transcript_hash");
    const pending: PendingProposal[] = r.vecOf((r2) => {
      const ref = r2.vec().slice();
      const sender = readSender(r2);
      return { ref, sender, proposal: readProposal(r2) };
    });
    const current = leavesOf(tree);
    const pastEpochs: PastEpoch[] = r.vecOf((r2) => {
      const pContext = readGroupContext(r2);
      const senderDataSecret = readSecret(r2, nh, "past sender_data_secret");
      const resumptionPsk = readSecret(r2, nh, "past resumption_psk");
      const pTree = readSecretTreeState(r2, cs);
      return {
        context: pContext,
        senderDataSecret,
        resumptionPsk,
        secretTree: pTree,
        leaves: readPastLeaves(r2, current),
      };
    });
    if (pastEpochs.length > MAX_PAST_EPOCHS) bad(`${pastEpochs.length} past epochs`);
    const active = r.u8();
    if (active > 1) bad(`active flag ${active}`);
    r.finish();
    return {
      cs,
      context,
      tree,
      ownLeaf,
      nodeKeys,
      signaturePrivateKey,
      keys,
      secretTree,
      confirmationTag,
      interimTranscriptHash,
      pending,
      pastEpochs,
      active: active === 1,
    };
  });
}
