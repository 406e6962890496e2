/**
 * Engine adapter for MLS groups (RFC 9420 §8–§12): create, join from a Welcome, commit
 * (add / remove / update), protect and process messages, (de)serialize the engine state.
 * Everything ts-mls-specific about groups stays in this file; the conversation layer sees
 * only `MlsGroup` and plain bytes.
 */
import {
  acceptAll,
  createApplicationMessage,
  createCommit,
  decodeMlsMessage,
  emptyPskIndex,
  encodeMlsMessage,
  processMessage,
  type CiphersuiteImpl,
  type ClientConfig,
  type ClientState,
  type Extension,
  type GroupContext,
  type KeyPackage as MlsKeyPackage,
  type LeafNode,
  type MLSMessage,
  type Proposal,
  type RatchetTree,
  type Signature,
  type Welcome,
} from "ts-mls";
import { defaultClientConfig } from "ts-mls/clientConfig.js";
import { ciphersuites, getCiphersuiteNameFromId, type CiphersuiteId } from "ts-mls/crypto/ciphersuite.js";
import {
  encodeLeafNode,
  signLeafNodeKeyPackage,
  verifyLeafNodeSignatureKeyPackage,
} from "ts-mls/leafNode.js";
import { createGroupInfo } from "ts-mls/createCommit.js";
import {
  CodecError,
  CryptoVerificationError,
  InternalError,
  MlsError,
  UsageError,
  ValidationError,
} from "ts-mls/mlsError.js";
import {
  addHistoricalReceiverData,
  applyProposals,
  checkCanSendHandshakeMessages,
  decodeGroupStateWithoutTree,
  throwIfDefined,
  validateRatchetTree,
  type GroupState,
} from "ts-mls/clientState.js";
import { extensionsSupportedByCapabilities } from "ts-mls/extension.js";
import { encodeGroupInfoTBS, extractWelcomeSecret, verifyGroupInfoSignature } from "ts-mls/groupInfo.js";
import { signWithLabel } from "ts-mls/crypto/signature.js";
import {
  createConfirmationTag,
  encodeFramedContent,
  type FramedContentCommit,
} from "ts-mls/framedContent.js";
import { makeKeyPackageRef, verifyKeyPackage } from "ts-mls/keyPackage.js";
import type { ProposalOrRef } from "ts-mls/proposalOrRefType.js";
import { pathToRoot } from "ts-mls/pathSecrets.js";
import { mergePrivateKeyPaths, toPrivateKeyPath, type PrivateKeyPath } from "ts-mls/privateKeyPath.js";
import { accumulatePskSecret } from "ts-mls/pskIndex.js";
import { leafToNodeIndex, leafWidth, toLeafIndex, type LeafIndex } from "ts-mls/treemath.js";
import { firstCommonAncestor } from "ts-mls/updatePath.js";
import { zeroOutUint8Array } from "ts-mls/util/byteArray.js";
import { decryptGroupSecrets, encryptGroupSecrets, welcomeKey, welcomeNonce } from "ts-mls/welcome.js";
import { decodeVarLenData, decodeVarLenType } from "ts-mls/codec/variableLength.js";
import { decodeExternalSender, encodeExternalSender } from "ts-mls/externalSender.js";
import { decryptSenderData } from "ts-mls/privateMessage.js";
import { encodeRequiredCapabilities } from "ts-mls/requiredCapabilities.js";
import { ErrorCode, MlsKeypackagesError, type ErrorCode as ErrorCodeT } from "../errors.js";
import { assertCiphersuite, type Ciphersuite } from "./ciphersuite.js";
import { decodeMlsCredential } from "./credential.js";
import { encodeStateWithoutTree, encodeTree, groupContextBytes, treeHashRoot } from "./fastEncode.js";
import {
  fastDecodeGroupInfo,
  fastDecodeRatchetTree,
  fastDecodeTreeExtension,
  fastDecodeWelcome,
} from "./fastDecode.js";
import { leafCapabilities, verifiedSignatures, type SignatureTriple } from "./keypackage.js";
import {
  createSecretTree,
  deriveKeySchedule,
  deriveSecret,
  initializeEpoch,
  initializeKeySchedule,
} from "./keySchedule.js";
import { memo } from "./memo.js";
import { suiteImpl } from "./suite.js";
import { bytesEqual, concatBytes, encodeVarBytes } from "./tls.js";

/** The engine whose state we persist, and the versions whose state encoding we can read. */
export const ENGINE_NAME = "ts-mls";
export const ENGINE_VERSION = "1.6.4";
/** Engine versions whose state encoding (see `MlsGroup.encode`) this adapter decodes. */
export const READABLE_ENGINE_VERSIONS: readonly string[] = ["1.6.4"];

/**
 * Engine settings. Padding: ts-mls default (pad PrivateMessage content to 256 bytes, §6.3.1).
 * Past epochs kept for late application messages: 3, like CoreCrypto's default `max_past_epochs`.
 */
const CLIENT_CONFIG: ClientConfig = {
  ...defaultClientConfig,
  keyRetentionConfig: { ...defaultClientConfig.keyRetentionConfig, retainKeysForEpochs: 3 },
};

/**
 * RFC 9420 §11.1 required_capabilities as CoreCrypto puts it in every group context:
 * no extensions, no proposals, credential types Basic and X509.
 */
const REQUIRED_CAPABILITIES: Extension = {
  extensionType: "required_capabilities",
  extensionData: encodeRequiredCapabilities({
    extensionTypes: [],
    proposalTypes: [],
    credentialTypes: ["basic", "x509"],
  }),
};

/** A member leaf, as the conversation layer needs it. */
export interface MemberLeaf {
  leafIndex: number;
  /** Basic credential identity (the client id); undefined for other credential types. */
  identity: Uint8Array | undefined;
  credentialType: "basic" | "x509" | number;
  signatureKey: Uint8Array;
  encryptionKey: Uint8Array;
}

export interface CommitOutput {
  group: MlsGroup;
  /** MLSMessage(PublicMessage) carrying the Commit (§6.2). */
  commit: Uint8Array;
  /** MLSMessage(Welcome) when members were added (§12.4.3.1). */
  welcome: Uint8Array | undefined;
  /** MLSMessage(GroupInfo) of the new epoch with ratchet_tree and external_pub extensions (§12.4.3). */
  groupInfo: Uint8Array;
}

export type ProcessedKind = "application" | "commit" | "proposal";

export interface ProcessOutput {
  group: MlsGroup;
  kind: ProcessedKind;
  applicationData: Uint8Array | undefined;
  /** Leaf of the sender in the epoch the message was sent in (undefined for non-members). */
  sender: MemberLeaf | undefined;
  epochChanged: boolean;
}

/** A decoded Welcome and the KeyPackageRefs it carries secrets for (§12.4.3.1 `new_member`). */
export interface ParsedWelcome {
  readonly ciphersuite: number;
  readonly newMembers: readonly Uint8Array[];
  /** @internal */
  readonly welcome: Welcome;
}

/** Private keys that join a group from a Welcome. Secrets. */
export interface JoinKeys {
  keypackage: MlsKeyPackage;
  /** RFC 9420 §5.2 KeyPackageRef of `keypackage` (hash of its encoding). */
  keypackageRef: Uint8Array;
  initPrivateKey: Uint8Array;
  encryptionPrivateKey: Uint8Array;
  signaturePrivateKey: Uint8Array;
}

function fail(code: ErrorCodeT, message: string, cause?: unknown): never {
  throw new MlsKeypackagesError(code, message, {}, cause === undefined ? undefined : { cause });
}

/** Rethrow ours unchanged; wrap engine errors in `code`, keeping the engine message (never secret). */
function wrap(code: ErrorCodeT, what: string, err: unknown): never {
  if (err instanceof MlsKeypackagesError) throw err;
  const detail = err instanceof MlsError || err instanceof Error ? `: ${err.message}` : "";
  fail(code, `${what}${detail}`, err);
}

function leafOf(node: LeafNode, leafIndex: number): MemberLeaf {
  const c = node.credential;
  return {
    leafIndex,
    identity: c.credentialType === "basic" ? Uint8Array.from(c.identity) : undefined,
    credentialType: c.credentialType as MemberLeaf["credentialType"],
    signatureKey: node.signaturePublicKey,
    encryptionKey: node.hpkePublicKey,
  };
}

function membersOf(tree: ClientState["ratchetTree"]): MemberLeaf[] {
  const out: MemberLeaf[] = [];
  for (let i = 0; i < tree.length; i += 2) {
    const n = tree[i];
    if (n?.nodeType === "leaf") out.push(leafOf(n.leaf, i / 2));
  }
  return out;
}

/**
 * RFC 9420 §12.4.3.3 encodings of ratchet trees, by tree. ts-mls never mutates a tree (every
 * change copies the array), so an encoding stays valid for as long as its tree lives.
 */
const treeBytes = new WeakMap<RatchetTree, Uint8Array>();

function encodedTree(tree: RatchetTree): Uint8Array {
  return memo(treeBytes, tree, encodeTree);
}

type Triple = SignatureTriple;

/**
 * `cs` whose signature check skips the exact (key, message, signature) triples of the key
 * packages' two signatures (RFC 9420 §10.1: LeafNodeTBS, KeyPackageTBS), already known good:
 * packages the caller has just verified with `Keypackage.verify` (ts-mls would verify them a
 * second time while applying the Add proposals), or our own stored package when joining. The
 * triples are those `verifyKeypackageSignatures` found valid for that very package object, or
 * else are obtained by running ts-mls's own verification functions with a recorder: either way
 * exactly the calls ts-mls will make; anything else is verified as usual.
 */
async function trusting(cs: CiphersuiteImpl, adds: readonly MlsKeyPackage[]): Promise<CiphersuiteImpl> {
  const known: Triple[] = [];
  const recorder: Signature = {
    sign: () => Promise.reject(new Error("unused")),
    keygen: () => Promise.reject(new Error("unused")),
    verify: async (publicKey, message, signature) => {
      known.push([publicKey, message, signature]);
      return true;
    },
  };
  for (const kp of adds) {
    const verified = verifiedSignatures.get(kp);
    if (verified !== undefined) {
      known.push(...verified); // just checked by Keypackage.verify: the very same calls
      continue;
    }
    await verifyLeafNodeSignatureKeyPackage(kp.leafNode, recorder);
    await verifyKeyPackage(kp, recorder);
  }
  const real = cs.signature;
  const signature: Signature = {
    sign: (key, message) => real.sign(key, message),
    keygen: () => real.keygen(),
    verify: (publicKey, message, sig) =>
      known.some(([k, m, s]) => bytesEqual(k, publicKey) && bytesEqual(s, sig) && bytesEqual(m, message))
        ? Promise.resolve(true)
        : real.verify(publicKey, message, sig),
  };
  return { ...cs, signature };
}

/**
 * The GroupInfo of the commit bundle (RFC 9420 §12.4.3), as CoreCrypto makes it: extensions
 * `ratchet_tree` then `external_pub`. ts-mls's own `createGroupInfoWithExternalPub…` writes the
 * raw key as `external_pub` data, but §12.4.3.2 defines it as `struct { HPKEPublicKey
 * external_pub; }` with `opaque HPKEPublicKey<V>`: the key needs its length prefix, or
 * OpenMLS/CoreCrypto refuse the GroupInfo (InvalidVectorLength).
 */
async function bundleGroupInfo(state: ClientState, cs: CiphersuiteImpl) {
  const external = await cs.hpke.deriveKeyPair(state.keySchedule.externalSecret);
  const externalPub = await cs.hpke.exportPublicKey(external.publicKey);
  return createGroupInfo(
    state.groupContext,
    state.confirmationTag,
    state,
    [
      { extensionType: "ratchet_tree", extensionData: encodedTree(state.ratchetTree) },
      { extensionType: "external_pub", extensionData: encodeVarBytes(externalPub) },
    ],
    cs,
  );
}

/**
 * RFC 9420 §12.1.8.1 puts ONE `external_senders` extension in the group context, holding a
 * vector of ExternalSender; ts-mls 1.6.4 instead reads every `external_senders` extension as a
 * single ExternalSender and indexes the extensions with `sender_index`. To verify a proposal
 * from an external sender (e.g. Wire's backend), hand ts-mls a context in its shape: one
 * extension per sender, in order. Used for that verification only; never stored or hashed.
 */
function tsMlsExternalSendersView(gc: GroupContext): GroupContext {
  const extensions: Extension[] = [];
  for (const ext of gc.extensions) {
    if (ext.extensionType !== "external_senders") {
      extensions.push(ext);
      continue;
    }
    const r = decodeVarLenType(decodeExternalSender)(ext.extensionData, 0);
    if (r === undefined || r[1] !== ext.extensionData.length) {
      fail(ErrorCode.InvalidMessage, "the conversation's external_senders extension does not decode");
    }
    for (const sender of r[0])
      extensions.push({ extensionType: "external_senders", extensionData: encodeExternalSender(sender) });
  }
  return { ...gc, extensions };
}

/** RFC 9420 §7.3 / §7.9.1: no two nodes share an HPKE key, no two leaves a signature key. */
function keysUnique(tree: ClientState["ratchetTree"]): boolean {
  const hpke = new Set<string>();
  const sig = new Set<string>();
  for (const n of tree) {
    if (n === undefined) continue;
    const h = hex(n.nodeType === "leaf" ? n.leaf.hpkePublicKey : n.parent.hpkePublicKey);
    if (hpke.has(h)) return false;
    hpke.add(h);
    if (n.nodeType === "leaf") {
      const s = hex(n.leaf.signaturePublicKey);
      if (sig.has(s)) return false;
      sig.add(s);
    }
  }
  return true;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] as number).toString(16).padStart(2, "0");
  return s;
}

function mlsMessageBytes(m: MLSMessage): Uint8Array {
  return encodeMlsMessage(m);
}

function decodeWholeMlsMessage(bytes: Uint8Array): MLSMessage | undefined {
  try {
    const r = decodeMlsMessage(bytes, 0);
    if (r === undefined || r[1] !== bytes.length) return undefined;
    return r[0];
  } catch {
    return undefined;
  }
}

/**
 * One MLS group state (immutable: every operation returns a new `MlsGroup`).
 */
export class MlsGroup {
  readonly ciphersuite: Ciphersuite;
  readonly #state: ClientState;

  private constructor(ciphersuite: Ciphersuite, state: ClientState) {
    this.ciphersuite = ciphersuite;
    this.#state = state;
  }

  /** RFC 9420 §11: a one-member group at epoch 0, our leaf made from the credential. */
  static async create(input: {
    ciphersuite: Ciphersuite;
    groupId: Uint8Array;
    credential: Uint8Array;
    signaturePublicKey: Uint8Array;
    signaturePrivateKey: Uint8Array;
    notBefore: number;
    notAfter: number;
  }): Promise<MlsGroup> {
    const cs = await suiteImpl(input.ciphersuite);
    const credential = decodeMlsCredential(input.credential);
    if (credential === undefined) fail(ErrorCode.KeystoreError, "stored credential does not decode");
    // Only our leaf node is needed (§7.2, source key_package like CoreCrypto's creator leaf):
    // no init key and no KeyPackage signature, unlike a full key package.
    const leafKeys = await cs.hpke.generateKeyPair();
    const leafNode = await signLeafNodeKeyPackage(
      {
        leafNodeSource: "key_package",
        hpkePublicKey: await cs.hpke.exportPublicKey(leafKeys.publicKey),
        signaturePublicKey: input.signaturePublicKey,
        credential,
        capabilities: leafCapabilities(false),
        lifetime: { notBefore: BigInt(input.notBefore), notAfter: BigInt(input.notAfter) },
        extensions: [],
      },
      input.signaturePrivateKey,
      cs.signature,
    );
    // ts-mls 1.6.4 `createGroup`, step for step (its external_senders check has nothing to
    // check: the only extension is required_capabilities), with our key schedule functions.
    const ratchetTree: RatchetTree = [{ nodeType: "leaf", leaf: leafNode }];
    const confirmedTranscriptHash = new Uint8Array();
    const groupContext: GroupContext = {
      version: "mls10",
      cipherSuite: cs.name,
      epoch: 0n,
      treeHash: await treeHashRoot(ratchetTree, cs.hash),
      groupId: Uint8Array.from(input.groupId),
      extensions: [REQUIRED_CAPABILITIES],
      confirmedTranscriptHash,
    };
    const epochSecret = cs.rng.randomBytes(cs.kdf.size); // §11: a random epoch secret
    const keySchedule = await initializeKeySchedule(epochSecret, cs.kdf);
    const confirmationTag = await createConfirmationTag(
      keySchedule.confirmationKey,
      confirmedTranscriptHash,
      cs.hash,
    );
    const encryptionSecret = await deriveSecret(epochSecret, "encryption", cs.kdf);
    const secretTree = await createSecretTree(1, encryptionSecret, cs.kdf);
    epochSecret.fill(0);
    encryptionSecret.fill(0);
    const state: ClientState = {
      ratchetTree,
      keySchedule,
      secretTree,
      privatePath: {
        leafIndex: 0,
        privateKeys: { [0]: await cs.hpke.exportPrivateKey(leafKeys.privateKey) },
      },
      signaturePrivateKey: input.signaturePrivateKey,
      unappliedProposals: {},
      historicalReceiverData: new Map(),
      groupContext,
      confirmationTag,
      groupActiveState: { kind: "active" },
      clientConfig: CLIENT_CONFIG,
    };
    return new MlsGroup(input.ciphersuite, state);
  }

  /**
   * Engine state bytes (secret: contains our leaf, path and epoch secrets):
   * `opaque ratchet_tree<V>` (RFC 9420 §12.4.3.3 encoding) followed by ts-mls's
   * `encodeGroupStateWithoutTree`. The tree is kept apart so that its encoding, the bulk of a
   * large group's state, is reused while the tree does not change (application messages) and
   * shared with the commit bundle's GroupInfo.
   */
  encode(): Uint8Array {
    return concatBytes([
      encodeVarBytes(encodedTree(this.#state.ratchetTree)),
      encodeStateWithoutTree(this.#state), // = ts-mls encodeGroupStateWithoutTree (fastEncode.ts)
    ]);
  }

  /** Inverse of `encode()`; `UnsupportedConversationState` when the bytes are not a whole state. */
  static decode(ciphersuite: Ciphersuite, bytes: Uint8Array): MlsGroup {
    const bad = (err?: unknown): never =>
      err === undefined
        ? fail(ErrorCode.UnsupportedConversationState, "the stored engine state does not decode")
        : wrap(ErrorCode.UnsupportedConversationState, "the stored engine state does not decode", err);
    let decoded: GroupState | undefined;
    try {
      const t = decodeVarLenData(bytes, 0);
      if (t === undefined) return bad();
      const [treeData, treeLength] = t;
      const tree = fastDecodeRatchetTree(treeData, 0);
      if (tree === undefined || tree[1] !== treeData.length) return bad();
      const rest = decodeGroupStateWithoutTree(tree[0])(bytes, treeLength);
      if (rest === undefined || treeLength + rest[1] !== bytes.length) return bad();
      treeBytes.set(tree[0], treeData);
      decoded = rest[0];
    } catch (err) {
      bad(err);
    }
    if (decoded === undefined) return bad();
    const state: ClientState = { ...decoded, clientConfig: CLIENT_CONFIG };
    if (state.groupContext.cipherSuite !== getCiphersuiteNameFromId(ciphersuite as CiphersuiteId)) {
      fail(
        ErrorCode.UnsupportedConversationState,
        "the stored engine state has another cipher suite than its header",
      );
    }
    return new MlsGroup(ciphersuite, state);
  }

  groupId(): Uint8Array {
    return Uint8Array.from(this.#state.groupContext.groupId);
  }

  epoch(): bigint {
    return this.#state.groupContext.epoch;
  }

  /** False once a commit removed us (§12.4.2): the state is kept but can no longer send. */
  isActive(): boolean {
    return this.#state.groupActiveState.kind === "active";
  }

  /** Proposals received and not yet committed (§12.1); the next commit includes them by reference. */
  pendingProposals(): number {
    return Object.keys(this.#state.unappliedProposals).length;
  }

  ownLeafIndex(): number {
    return this.#state.privatePath.leafIndex;
  }

  members(): MemberLeaf[] {
    return membersOf(this.#state.ratchetTree);
  }

  /** Public keys of every non-blank parent node (for §7.3 encryption key uniqueness). */
  parentEncryptionKeys(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const tree = this.#state.ratchetTree;
    for (let i = 1; i < tree.length; i += 2) {
      const n = tree[i];
      if (n?.nodeType === "parent") out.push(n.parent.hpkePublicKey);
    }
    return out;
  }

  #ensureCanCommit(): void {
    if (!this.isActive()) fail(ErrorCode.InvalidMessage, "we are no longer a member of this conversation");
  }

  /**
   * One Commit (§12.4) with Add proposals for `adds` and Remove proposals for `removeLeaves`
   * (by value), or an empty Commit with an UpdatePath (a self-update) when both are empty.
   * Sent as PublicMessage, like CoreCrypto (whose default wire policy rejects encrypted commits).
   */
  async commit(input: {
    adds?: readonly MlsKeyPackage[];
    removeLeaves?: readonly number[];
    /** The caller verified both signatures of every package in `adds` (`Keypackage.verify`). */
    addsVerified?: boolean;
  }): Promise<CommitOutput> {
    this.#ensureCanCommit();
    const suite = await suiteImpl(this.ciphersuite);
    const cs = input.addsVerified === true && input.adds?.length ? await trusting(suite, input.adds) : suite;
    const proposals: Proposal[] = [
      ...(input.removeLeaves ?? []).map((removed): Proposal => ({
        proposalType: "remove",
        remove: { removed },
      })),
      ...(input.adds ?? []).map((keyPackage): Proposal => ({ proposalType: "add", add: { keyPackage } })),
    ];
    if (proposals.length > 0 && !input.removeLeaves?.length && this.pendingProposals() === 0) {
      let out: Awaited<ReturnType<typeof addCommit>>;
      try {
        out = await addCommit(this.#state, proposals, cs, suite);
      } catch (err) {
        wrap(ErrorCode.InvalidKeypackage, "the engine refused the commit", err);
      }
      return { ...out, group: new MlsGroup(this.ciphersuite, out.newState) };
    }
    let result: Awaited<ReturnType<typeof createCommit>>;
    try {
      result = await createCommit(
        { state: this.#state, cipherSuite: cs, pskIndex: emptyPskIndex },
        { extraProposals: proposals, ratchetTreeExtension: true, wireAsPublicMessage: true },
      );
    } catch (err) {
      wrap(
        input.adds?.length ? ErrorCode.InvalidKeypackage : ErrorCode.InvalidMessage,
        "the engine refused the commit",
        err,
      );
    }
    const next = result.newState;
    const groupInfo = await bundleGroupInfo(next, suite);
    return {
      group: new MlsGroup(this.ciphersuite, next),
      commit: mlsMessageBytes(result.commit),
      welcome:
        result.welcome === undefined
          ? undefined
          : mlsMessageBytes({ version: "mls10", wireformat: "mls_welcome", welcome: result.welcome }),
      groupInfo: mlsMessageBytes({ version: "mls10", wireformat: "mls_group_info", groupInfo }),
    };
  }

  /** RFC 9420 §6.3: an application message as MLSMessage(PrivateMessage). */
  async encrypt(plaintext: Uint8Array): Promise<{ group: MlsGroup; message: Uint8Array }> {
    const cs = await suiteImpl(this.ciphersuite);
    let r: Awaited<ReturnType<typeof createApplicationMessage>>;
    try {
      r = await createApplicationMessage(this.#state, Uint8Array.from(plaintext), cs);
    } catch (err) {
      wrap(ErrorCode.InvalidMessage, "cannot encrypt in this conversation", err);
    }
    return {
      group: new MlsGroup(this.ciphersuite, r.newState),
      message: mlsMessageBytes({
        version: "mls10",
        wireformat: "mls_private_message",
        privateMessage: r.privateMessage,
      }),
    };
  }

  /**
   * Process an incoming MLSMessage (PrivateMessage or PublicMessage, §6): application data is
   * returned, proposals are stored, commits are verified and merged (§12.4.2).
   */
  async process(bytes: Uint8Array): Promise<ProcessOutput> {
    const msg = decodeWholeMlsMessage(bytes);
    if (msg === undefined) fail(ErrorCode.InvalidMessage, "not a well-formed MLSMessage");
    if (msg.wireformat !== "mls_private_message" && msg.wireformat !== "mls_public_message") {
      fail(ErrorCode.InvalidMessage, `expected a PrivateMessage or PublicMessage, got ${msg.wireformat}`);
    }
    const gc = this.#state.groupContext;
    const groupId =
      msg.wireformat === "mls_private_message"
        ? msg.privateMessage.groupId
        : msg.publicMessage.content.groupId;
    if (!bytesEqual(groupId, gc.groupId))
      fail(ErrorCode.InvalidMessage, "the message belongs to another group");
    const cs = await suiteImpl(this.ciphersuite);
    const sender = await this.#senderOf(msg, cs);
    const external =
      msg.wireformat === "mls_public_message" && msg.publicMessage.content.sender.senderType === "external";
    const input = external ? { ...this.#state, groupContext: tsMlsExternalSendersView(gc) } : this.#state;
    let r: Awaited<ReturnType<typeof processMessage>>;
    try {
      r = await processMessage(msg, input, emptyPskIndex, acceptAll, cs);
    } catch (err) {
      wrap(ErrorCode.InvalidMessage, "the message was rejected", err);
    }
    if (external) {
      // Only proposals come from external senders (§12.1.8); they leave the context as it was.
      if (r.newState.groupContext.epoch !== gc.epoch)
        fail(ErrorCode.InvalidMessage, "an external sender cannot commit");
      r = { ...r, newState: { ...r.newState, groupContext: gc } };
    }
    const group = new MlsGroup(this.ciphersuite, r.newState);
    if (r.kind === "applicationMessage") {
      return { group, kind: "application", applicationData: r.message, sender, epochChanged: false };
    }
    const epochChanged = r.newState.groupContext.epoch !== gc.epoch || !group.isActive();
    if (epochChanged && !keysUnique(r.newState.ratchetTree)) {
      // RFC 9420 §7.3: encryption keys unique in the tree, signature keys among leaves (ts-mls 1.6.4 misses some cases).
      fail(
        ErrorCode.InvalidMessage,
        "the commit would give two tree nodes the same encryption or signature key",
      );
    }
    return {
      group,
      kind: epochChanged ? "commit" : "proposal",
      applicationData: undefined,
      sender,
      epochChanged,
    };
  }

  /** The member that sent a message: from the PublicMessage sender, or the decrypted sender data (§6.3.2). */
  async #senderOf(
    msg: MLSMessage,
    cs: Awaited<ReturnType<typeof suiteImpl>>,
  ): Promise<MemberLeaf | undefined> {
    const st = this.#state;
    if (msg.wireformat === "mls_public_message") {
      const s = msg.publicMessage.content.sender;
      return s.senderType === "member"
        ? membersOf(st.ratchetTree).find((m) => m.leafIndex === s.leafIndex)
        : undefined;
    }
    if (msg.wireformat !== "mls_private_message") return undefined;
    const pm = msg.privateMessage;
    const epochData =
      pm.epoch === st.groupContext.epoch ? undefined : st.historicalReceiverData.get(pm.epoch);
    if (pm.epoch !== st.groupContext.epoch && epochData === undefined) return undefined;
    const senderDataSecret = epochData?.senderDataSecret ?? st.keySchedule.senderDataSecret;
    const tree = epochData?.ratchetTree ?? st.ratchetTree;
    let data: Awaited<ReturnType<typeof decryptSenderData>>;
    try {
      data = await decryptSenderData(pm, senderDataSecret, cs);
    } catch {
      return undefined; // processMessage reports the real error
    }
    if (data === undefined) return undefined;
    return membersOf(tree).find((m) => m.leafIndex === data.leafIndex);
  }

  /** Decode an MLSMessage(Welcome) (§12.4.3.1); `InvalidWelcome` when malformed. */
  static parseWelcome(bytes: Uint8Array): ParsedWelcome {
    if (!(bytes instanceof Uint8Array))
      fail(ErrorCode.InvalidWelcome, "expected the Welcome as a Uint8Array");
    let welcome: Welcome;
    // MLSMessage header mls10 (1), mls_welcome (3): the Welcome by the fast decoder (same result)
    const fast =
      bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 1 && bytes[2] === 0 && bytes[3] === 3
        ? fastDecodeWelcome(bytes, 4)
        : undefined;
    if (fast !== undefined && 4 + fast[1] === bytes.length) {
      welcome = fast[0];
    } else {
      const msg = decodeWholeMlsMessage(bytes);
      if (msg === undefined) fail(ErrorCode.InvalidWelcome, "not a well-formed MLSMessage");
      if (msg.wireformat !== "mls_welcome")
        fail(ErrorCode.InvalidWelcome, `expected a Welcome, got ${msg.wireformat}`);
      welcome = msg.welcome;
    }
    return {
      ciphersuite:
        (ciphersuites as Record<string, number>)[welcome.cipherSuite] ?? Number(welcome.cipherSuite),
      newMembers: welcome.secrets.map((s) => s.newMember),
      welcome,
    };
  }

  /**
   * Join from a Welcome (§12.4.3.1) with one of our key packages: decrypt the group secrets
   * with the init key, the GroupInfo with the welcome secret, verify its signature, the
   * ratchet tree (from the `ratchet_tree` extension, §12.4.3.3) and the confirmation tag.
   */
  static async join(parsed: ParsedWelcome, keys: JoinKeys): Promise<MlsGroup> {
    const suite = assertCiphersuite(parsed.ciphersuite);
    // Our own leaf in the tree is our stored key package's, which we signed: no need to verify
    // that one signature again (every other leaf, the GroupInfo and the tree are verified).
    const cs = await trusting(await suiteImpl(suite), [keys.keypackage]);
    let state: ClientState;
    try {
      state = await joinFromWelcome(parsed.welcome, keys, cs);
    } catch (err) {
      wrap(ErrorCode.InvalidWelcome, "cannot join from this Welcome", err);
    }
    return new MlsGroup(suite, state);
  }
}

const MLS10_GROUP_INFO = Uint8Array.of(0, 1, 0, 4); // MLSMessage header: mls10, mls_group_info (§6)
const MLS10_PUBLIC_MESSAGE = Uint8Array.of(0, 1, 0, 1); // mls10, mls_public_message

/**
 * ts-mls 1.6.4 `createCommit` for the one case of a Commit with Add proposals by value only
 * (no pending proposals, no removes: no UpdatePath, §12.4.2), sent as PublicMessage with the
 * `ratchet_tree` extension in the Welcome. Same steps and checks (`applyProposals` validates
 * the adds and builds the tree), same resulting state, with one difference in what is sent:
 * the Welcome's GroupInfo (§12.4.3.1) is the commit bundle's GroupInfo, i.e. it carries
 * `external_pub` (§12.4.3.2) after `ratchet_tree`, so it is signed and encoded once instead of
 * twice (ts-mls signs one without `external_pub` for the Welcome, and we signed another for
 * the bundle). A GroupInfo may carry both extensions; joiners ignore `external_pub`.
 */
/** @internal exported for test/mls/add-commit.test.ts */
export async function addCommit(
  state: ClientState,
  proposals: readonly Proposal[],
  cs: CiphersuiteImpl,
  suite: CiphersuiteImpl,
): Promise<{ newState: ClientState; commit: Uint8Array; welcome: Uint8Array; groupInfo: Uint8Array }> {
  checkCanSendHandshakeMessages(state);
  const ownLeaf = toLeafIndex(state.privatePath.leafIndex);
  const allProposals: ProposalOrRef[] = proposals.map((proposal) => ({
    proposalOrRefType: "proposal",
    proposal,
  }));
  const res = await applyProposals(state, allProposals, ownLeaf, emptyPskIndex, true, cs);
  if (res.additionalResult.kind !== "memberCommit" || res.needsUpdatePath || res.selfRemoved)
    throw new InternalError("an add-only commit needs no path");
  const { addedLeafNodes, extensions } = res.additionalResult;
  const tree = res.tree;
  const groupContext = extensions.length > 0 ? { ...state.groupContext, extensions } : state.groupContext;
  const commitSecret = new Uint8Array(cs.kdf.size); // no path: commit_secret = 0 (§8)
  const authenticatedData = new Uint8Array(0);
  // FramedContent (§6) of the commit, encoded once: signed as FramedContentTBS (§6.1), hashed
  // into the confirmed transcript hash (§8.2), MACed for the membership tag (§6.2), and sent
  const framedContent: FramedContentCommit = {
    contentType: "commit",
    commit: { proposals: allProposals, path: undefined },
    groupId: state.groupContext.groupId,
    epoch: state.groupContext.epoch,
    sender: { senderType: "member", leafIndex: ownLeaf },
    authenticatedData,
  };
  const content = encodeFramedContent(framedContent);
  const tbs = concatBytes([MLS10_PUBLIC_MESSAGE, content, groupContextBytes(state.groupContext)]);
  const signature = await signWithLabel(state.signaturePrivateKey, "FramedContentTBS", tbs, cs.signature);
  const treeHash = await treeHashRoot(tree, cs.hash, state.ratchetTree);
  // ts-mls nextEpochContext: interim = H(confirmed || tag<V>) of the current epoch, then
  // confirmed' = H(interim || ConfirmedTranscriptHashInput{wireformat, content, signature<V>})
  const interim = await cs.hash.digest(
    concatBytes([state.groupContext.confirmedTranscriptHash, encodeVarBytes(state.confirmationTag)]),
  );
  const nextContext: GroupContext = {
    ...groupContext,
    epoch: groupContext.epoch + 1n,
    treeHash,
    confirmedTranscriptHash: await cs.hash.digest(
      concatBytes([interim, MLS10_PUBLIC_MESSAGE.subarray(2), content, encodeVarBytes(signature)]),
    ),
  };
  const epochSecrets = await initializeEpoch(
    state.keySchedule.initSecret,
    commitSecret,
    nextContext,
    res.pskSecret,
    cs.kdf,
  );
  const confirmationTag = await createConfirmationTag(
    epochSecrets.keySchedule.confirmationKey,
    nextContext.confirmedTranscriptHash,
    cs.hash,
  );
  // FramedContentAuthData{signature<V>, confirmation_tag<V>}; membership_tag = MAC(membership_key,
  // AuthenticatedContentTBM{FramedContentTBS, auth}) with the current epoch's key (§6.2)
  const auth = concatBytes([encodeVarBytes(signature), encodeVarBytes(confirmationTag)]);
  const membershipTag = await cs.hash.mac(state.keySchedule.membershipKey, concatBytes([tbs, auth]));
  const commit = concatBytes([MLS10_PUBLIC_MESSAGE, content, auth, encodeVarBytes(membershipTag)]);
  // GroupInfo of the new epoch (§12.4.3): ratchet_tree, external_pub; signed once
  const external = await cs.hpke.deriveKeyPair(epochSecrets.keySchedule.externalSecret);
  const externalPub = await cs.hpke.exportPublicKey(external.publicKey);
  // GroupInfo = GroupInfoTBS || signature<V>: the TBS is encoded once, for signing and sending
  const giTbs = encodeGroupInfoTBS({
    groupContext: nextContext,
    extensions: [
      { extensionType: "ratchet_tree", extensionData: encodedTree(tree) },
      { extensionType: "external_pub", extensionData: encodeVarBytes(externalPub) },
    ],
    confirmationTag,
    signer: state.privatePath.leafIndex,
  });
  const groupInfoBytes = concatBytes([
    giTbs,
    encodeVarBytes(await signWithLabel(state.signaturePrivateKey, "GroupInfoTBS", giTbs, suite.signature)),
  ]);
  const encryptedGroupInfo = await cs.hpke.encryptAead(
    await welcomeKey(epochSecrets.welcomeSecret, cs),
    await welcomeNonce(epochSecrets.welcomeSecret, cs),
    undefined,
    groupInfoBytes,
  );
  const secrets: Welcome["secrets"] = [];
  for (const [, keyPackage] of addedLeafNodes) {
    // no path secrets (no UpdatePath) and no PSKs: GroupSecrets = joiner_secret only
    const egs = await encryptGroupSecrets(
      await cs.hpke.importPublicKey(keyPackage.initKey),
      encryptedGroupInfo,
      { joinerSecret: epochSecrets.joinerSecret, pathSecret: undefined, psks: res.pskIds },
      cs.hpke,
    );
    secrets.push({
      newMember: await makeKeyPackageRef(keyPackage, cs.hash),
      encryptedGroupSecrets: { kemOutput: egs.enc, ciphertext: egs.ct },
    });
  }
  const welcome: Welcome = { cipherSuite: nextContext.cipherSuite, secrets, encryptedGroupInfo };
  const [historicalReceiverData] = addHistoricalReceiverData(state);
  const newState: ClientState = {
    groupContext: nextContext,
    ratchetTree: tree,
    secretTree: await createSecretTree(leafWidth(tree.length), epochSecrets.encryptionSecret, cs.kdf),
    keySchedule: epochSecrets.keySchedule,
    privatePath: state.privatePath,
    unappliedProposals: {},
    historicalReceiverData,
    confirmationTag,
    signaturePrivateKey: state.signaturePrivateKey,
    groupActiveState: { kind: "active" },
    clientConfig: state.clientConfig,
  };
  zeroOutUint8Array(epochSecrets.encryptionSecret);
  zeroOutUint8Array(epochSecrets.joinerSecret);
  return {
    newState,
    commit,
    welcome: mlsMessageBytes({ version: "mls10", wireformat: "mls_welcome", welcome }),
    groupInfo: concatBytes([MLS10_GROUP_INFO, groupInfoBytes]),
  };
}

/**
 * ts-mls 1.6.4 `joinGroupWithExtensions` (no ratchet tree passed in, no PSK store, no
 * resumption), step for step and with the same checks, with three changes that do not
 * change the result:
 *  - the GroupInfo and the ratchet tree are decoded by `fastDecode.ts` (ts-mls's decoders
 *    cost more than the signature checks; same values, see test/mls/fast-decode.test.ts),
 *    and the tree's bytes are kept as its encoding when they are canonical, so storing the
 *    state does not encode the tree again;
 *  - our KeyPackageRef (§5.2) is the caller's hash of our stored key package bytes, and our
 *    leaf is found by its keys before comparing encodings (ts-mls encodes every leaf);
 *  - the confirmation tag (§8.1, §12.4.3.1) is checked with the confirmation key of the key
 *    schedule just derived from the same joiner secret, PSK secret and group context, instead
 *    of deriving the epoch secret a second time.
 */
async function joinFromWelcome(welcome: Welcome, keys: JoinKeys, cs: CiphersuiteImpl): Promise<ClientState> {
  const keyPackage = keys.keypackage;
  const initKey = await cs.hpke.importPrivateKey(keys.initPrivateKey);
  const groupSecrets = await decryptGroupSecrets(initKey, keys.keypackageRef, welcome, cs.hpke);
  if (groupSecrets === undefined) throw new CodecError("Could not decode group secrets");
  const zeroes = new Uint8Array(cs.kdf.size);
  const [pskSecret, pskIds] = await accumulatePskSecret(groupSecrets.psks, emptyPskIndex, cs, zeroes);
  if (pskIds.some((id) => id.psktype === "resumption"))
    throw new ValidationError("No prior state passed for resumption");
  // decryptGroupInfo (§12.4.3.1): welcome_secret → key, nonce; AEAD-open; decode
  const welcomeSecret = await extractWelcomeSecret(groupSecrets.joinerSecret, pskSecret, cs.kdf);
  const giBytes = await cs.hpke.decryptAead(
    await welcomeKey(welcomeSecret, cs),
    await welcomeNonce(welcomeSecret, cs),
    undefined,
    welcome.encryptedGroupInfo,
  );
  const gi = fastDecodeGroupInfo(giBytes, 0)?.[0];
  if (gi === undefined) throw new CodecError("Could not decode group info");
  if (!extensionsSupportedByCapabilities(gi.groupContext.extensions, keyPackage.leafNode.capabilities))
    throw new UsageError("client does not support every extension in the GroupContext");
  const treeExtension = gi.extensions.find((ex) => ex.extensionType === "ratchet_tree");
  if (treeExtension === undefined)
    throw new UsageError("No RatchetTree passed and no ratchet_tree extension");
  const decodedTree = fastDecodeTreeExtension(treeExtension.extensionData);
  if (decodedTree === undefined) throw new CodecError("Could not decode RatchetTree");
  const tree = decodedTree.tree;
  const signerNode = tree[leafToNodeIndex(toLeafIndex(gi.signer))];
  if (signerNode === undefined) throw new ValidationError("Could not find signer leafNode");
  if (signerNode.nodeType === "parent") throw new ValidationError("Expected non blank leaf node");
  const config = CLIENT_CONFIG;
  if (
    !(await config.authService.validateCredential(
      signerNode.leaf.credential,
      signerNode.leaf.signaturePublicKey,
    ))
  )
    throw new ValidationError("Could not validate credential");
  if (!(await verifyGroupInfoSignature(gi, signerNode.leaf.signaturePublicKey, cs.signature)))
    throw new CryptoVerificationError("Could not verify groupInfo signature");
  if (gi.groupContext.cipherSuite !== keyPackage.cipherSuite)
    throw new ValidationError(
      "cipher suite in the GroupInfo does not match the cipher_suite in the KeyPackage",
    );
  throwIfDefined(
    await validateRatchetTree(
      tree,
      gi.groupContext,
      config.lifetimeConfig,
      config.authService,
      gi.groupContext.treeHash,
      cs,
    ),
  );
  const newLeaf = ownLeafIndex(tree, keyPackage.leafNode);
  if (newLeaf === undefined) throw new ValidationError("Could not find own leaf when processing welcome");
  const privateKeyPath: PrivateKeyPath = {
    leafIndex: newLeaf,
    privateKeys: { [leafToNodeIndex(newLeaf)]: keys.encryptionPrivateKey },
  };
  const privatePath =
    groupSecrets.pathSecret === undefined
      ? privateKeyPath
      : mergePrivateKeyPaths(
          await toPrivateKeyPath(
            await pathToRoot(
              tree,
              firstCommonAncestor(tree, newLeaf, toLeafIndex(gi.signer)),
              groupSecrets.pathSecret,
              cs.kdf,
            ),
            newLeaf,
            cs,
          ),
          privateKeyPath,
        );
  const [keySchedule, encryptionSecret] = await deriveKeySchedule(
    groupSecrets.joinerSecret,
    pskSecret,
    gi.groupContext,
    cs.kdf,
  );
  if (
    !(await cs.hash.verifyMac(
      keySchedule.confirmationKey,
      gi.confirmationTag,
      gi.groupContext.confirmedTranscriptHash,
    ))
  )
    throw new CryptoVerificationError("Could not verify confirmation tag");
  const secretTree = await createSecretTree(leafWidth(tree.length), encryptionSecret, cs.kdf);
  zeroOutUint8Array(encryptionSecret);
  zeroOutUint8Array(groupSecrets.joinerSecret);
  if (decodedTree.canonical) treeBytes.set(tree, treeExtension.extensionData);
  return {
    groupContext: gi.groupContext,
    ratchetTree: tree,
    privatePath,
    signaturePrivateKey: keys.signaturePrivateKey,
    confirmationTag: gi.confirmationTag,
    unappliedProposals: {},
    keySchedule,
    secretTree,
    historicalReceiverData: new Map(),
    groupActiveState: { kind: "active" },
    clientConfig: config,
  };
}

/**
 * ts-mls `findLeafIndex`: the leaf whose encoding equals `leaf`'s. Only a leaf with the same
 * encryption and signature keys can be equal, so the others are not encoded.
 */
function ownLeafIndex(tree: RatchetTree, leaf: LeafNode): LeafIndex | undefined {
  let mine: Uint8Array | undefined;
  for (let i = 0; i < tree.length; i += 2) {
    const n = tree[i];
    if (n?.nodeType !== "leaf") continue;
    if (!bytesEqual(n.leaf.hpkePublicKey, leaf.hpkePublicKey)) continue;
    if (!bytesEqual(n.leaf.signaturePublicKey, leaf.signaturePublicKey)) continue;
    mine ??= encodeLeafNode(leaf);
    if (bytesEqual(encodeLeafNode(n.leaf), mine)) return toLeafIndex(i / 2);
  }
  return undefined;
}
