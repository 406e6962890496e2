/**
 * RFC 9420 §11 creating a group: a one-member tree holding our leaf (source key_package, like
 * CoreCrypto's creator leaf: no KeyPackage around it), epoch 0 with an empty confirmed
 * transcript hash, a random epoch secret, and the confirmation tag of epoch 0 (§8.2).
 */
import { Writer } from "../codec/index.js";
import type { Credential } from "../credential/types.js";
import { signWithLabel, signWithLabelSync } from "../crypto/labels.js";
import { syncKeygenOf, syncSignatureOf, type CiphersuiteImpl } from "../crypto/types.js";
import { writeLeafNodeTbs } from "../keypackage/codec.js";
import {
  LeafNodeSources,
  MLS10,
  type Capabilities,
  type Extension,
  type LeafNode,
} from "../keypackage/types.js";
import { epochSecretsFromEpochSecret } from "../keyschedule/schedule.js";
import { confirmationTag } from "../keyschedule/transcript.js";
import type { GroupContext } from "../keyschedule/types.js";
import { treeHash } from "../tree/hash.js";
import type { RatchetTree } from "../tree/types.js";
import { enterEpoch } from "./epoch.js";
import type { GroupState } from "./state.js";

export interface CreateGroupInput {
  readonly cs: CiphersuiteImpl;
  readonly ciphersuite: number;
  readonly groupId: Uint8Array;
  readonly credential: Credential;
  readonly signaturePublicKey: Uint8Array;
  readonly signaturePrivateKey: Uint8Array;
  readonly capabilities: Capabilities;
  /** §7.2 lifetime of our leaf, seconds since the Unix epoch. */
  readonly notBefore: bigint;
  readonly notAfter: bigint;
  /** The GroupContext extensions of epoch 0 (e.g. required_capabilities, external_senders). */
  readonly extensions: readonly Extension[];
}

/** §7.2 our leaf node, signed (LeafNodeTBS of a key_package source carries no group context). */
async function creatorLeaf(input: CreateGroupInput, encryptionKey: Uint8Array): Promise<LeafNode> {
  const draft: LeafNode = {
    encryptionKey,
    signatureKey: input.signaturePublicKey,
    credential: input.credential,
    capabilities: input.capabilities,
    leafNodeSource: LeafNodeSources.key_package,
    lifetime: { notBefore: input.notBefore, notAfter: input.notAfter },
    parentHash: undefined,
    extensions: [],
    signature: new Uint8Array(0),
  };
  const w = new Writer(512);
  writeLeafNodeTbs(w, draft);
  const tbs = w.finish();
  const sync = syncSignatureOf(input.cs.signature);
  const signature =
    sync === undefined
      ? await signWithLabel(input.signaturePrivateKey, "LeafNodeTBS", tbs, input.cs.signature)
      : signWithLabelSync(input.signaturePrivateKey, "LeafNodeTBS", tbs, sync);
  return { ...draft, signature };
}

/** §7.2 a fresh HPKE key pair for our leaf: (public, private), serialized (RFC 9180 §7.1). */
async function leafKeyPair(cs: CiphersuiteImpl): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> {
  const sync = syncKeygenOf(cs.hpke);
  if (sync !== undefined) return sync.generateRawKeyPairSync();
  const keys = await cs.hpke.generateKeyPair();
  const [publicKey, privateKey] = await Promise.all([
    cs.hpke.exportPublicKey(keys.publicKey),
    cs.hpke.exportPrivateKey(keys.privateKey),
  ]);
  return { publicKey, privateKey };
}

/** §11: a new group with us as its only member, at epoch 0. */
export async function createGroup(input: CreateGroupInput): Promise<GroupState> {
  const { cs } = input;
  const { publicKey: encryptionKey, privateKey: encryptionPrivateKey } = await leafKeyPair(cs);
  const leaf = await creatorLeaf(input, encryptionKey);
  const tree: RatchetTree = [{ nodeType: 1, leaf }];
  const context: GroupContext = {
    version: MLS10,
    ciphersuite: input.ciphersuite,
    groupId: Uint8Array.from(input.groupId),
    epoch: 0n,
    treeHash: await treeHash(tree, cs.hash),
    confirmedTranscriptHash: new Uint8Array(0),
    extensions: input.extensions,
  };
  // §11: a fresh random epoch secret (KDF.Nh bytes), the epoch's secrets derived from it (§8);
  // `epochSecretsFromEpochSecret` zeroes it.
  const secrets = await epochSecretsFromEpochSecret(cs, cs.rng.randomBytes(cs.kdf.size));
  // §8.2: the confirmation tag of epoch 0, over the empty confirmed transcript hash.
  const tag = await confirmationTag(cs, secrets.confirmationKey, context.confirmedTranscriptHash);
  return enterEpoch(undefined, {
    cs,
    context,
    tree,
    ownLeaf: 0,
    privateKeys: new Map([[0, encryptionPrivateKey]]),
    signaturePrivateKey: input.signaturePrivateKey,
    secrets,
    confirmationTag: tag,
  });
}
