/**
 * The conversation layer's view of an MLS group (RFC 9420 §8–§12): a thin `MlsGroup` over our
 * engine in src/mls/group/ — create, join from a Welcome, commit (add / remove / update /
 * pending proposals), external commit, protect and process messages, and the state encoding.
 * Every check is the engine's; this file adds the library's policy around the application's
 * authentication service (src/mls/validation/authentication.ts) and plain-bytes inputs and outputs.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { assertCiphersuite, type Ciphersuite } from "./ciphersuite.js";
import { decodeExact, type Writer } from "./codec/index.js";
import type { AuthenticationService } from "./credential/authentication.js";
import { readCredential } from "./credential/codec.js";
import { CredentialTypes } from "./credential/types.js";
import { AuthenticationGate, authenticate } from "./validation/authentication.js";
import { createCommit } from "./group/commit.js";
import { createGroup } from "./group/create.js";
import { REQUIRED_CAPABILITIES_CORECRYPTO } from "./group/defaults.js";
import { decodeAs } from "./validation/errors.js";
import { createExternalCommit } from "./group/external.js";
import { encryptApplication, receiveMessage } from "./group/message.js";
import { isIntact, type GroupState } from "./group/state.js";
import {
  STATE_ENGINE,
  STATE_FORMAT_VERSION,
  decodeGroupState,
  encodeGroupState,
  groupStateSizeHint,
  writeGroupState,
} from "./group/stateEncoding.js";
import { joinGroup, parseWelcome, verifyWelcome, type UnverifiedWelcome } from "./group/welcome.js";
import { SenderTypes } from "./framing/types.js";
import { leafCapabilities } from "./keypackage/build.js";
import type { KeyPackage, LeafNode } from "./keypackage/types.js";
import { members as treeMembers } from "./tree/tree.js";
import { suiteImpl } from "./suite.js";

/** The engine whose state we persist, and the versions of its state encoding we read. */
export const ENGINE_NAME = STATE_ENGINE;
export const ENGINE_VERSION = String(STATE_FORMAT_VERSION);
export const READABLE_ENGINE_VERSIONS: readonly string[] = [ENGINE_VERSION];

/** A member leaf, as the conversation layer needs it. */
export interface MemberLeaf {
  leafIndex: number;
  /** Basic credential identity (the client id); undefined for other credential types. */
  identity: Uint8Array | undefined;
  credentialType: "basic" | "x509" | number;
  /** X.509 credential's certificate chain (DER, leaf first); empty for other credential types. */
  certificates: readonly Uint8Array[];
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
  readonly welcome: UnverifiedWelcome;
}

/** Private keys that join a group from a Welcome. Secrets. */
export interface JoinKeys {
  keypackage: KeyPackage;
  /** RFC 9420 §5.2 KeyPackageRef of `keypackage` (hash of its encoding). */
  keypackageRef: Uint8Array;
  initPrivateKey: Uint8Array;
  encryptionPrivateKey: Uint8Array;
  signaturePrivateKey: Uint8Array;
}

/** What received leaves are checked against: the session clock and the session's authentication service. */
export interface ReceivePolicy {
  /** The session clock's time, for lifetimes (§7.3). */
  readonly now: Date;
  /** The application's authentication service (§5.3.1). */
  readonly authenticationService: AuthenticationService;
}

/** Seconds since the Unix epoch of the policy's time (the engine's session clock). */
function seconds(policy: ReceivePolicy): bigint {
  return BigInt(Math.floor(policy.now.getTime() / 1000));
}

/**
 * Accepts every credential: for our own commits, whose added key packages the caller put to the
 * session's service (`authenticateKeyPackage`) and whose pending proposals were checked when
 * they arrived.
 */
const ALREADY_AUTHENTICATED: AuthenticationService = Object.freeze({
  validate: () => ({ ok: true as const }),
});

/** §5.3.1 for a key package we are about to add (the caller's `index` names it). */
export async function authenticateKeyPackage(
  policy: ReceivePolicy,
  keyPackage: KeyPackage,
  index: number,
): Promise<void> {
  const leaf = keyPackage.leafNode;
  await authenticate(
    new AuthenticationGate(policy.authenticationService),
    { credential: leaf.credential, signatureKey: leaf.signatureKey, ciphersuite: keyPackage.ciphersuite },
    "keypackage",
    { text: `key package #${index}`, details: { index } },
  );
}

function memberOf(leaf: LeafNode, leafIndex: number): MemberLeaf {
  const c = leaf.credential;
  return {
    leafIndex,
    identity: c.credentialType === CredentialTypes.basic ? Uint8Array.from(c.identity) : undefined,
    credentialType:
      c.credentialType === CredentialTypes.basic
        ? "basic"
        : c.credentialType === CredentialTypes.x509
          ? "x509"
          : c,
    certificates: c.credentialType === CredentialTypes.x509 ? c.certificates : [],
    signatureKey: leaf.signatureKey,
    encryptionKey: leaf.encryptionKey,
  };
}

/** Decodes the stored §5.3 Credential of our signature key. */
function credentialOf(bytes: Uint8Array) {
  return decodeAs(ErrorCode.KeystoreError, "the stored credential", () => decodeExact(bytes, readCredential));
}

/** One MLS group state (immutable: every operation returns a new `MlsGroup`). */
export class MlsGroup {
  readonly ciphersuite: Ciphersuite;
  readonly #state: GroupState;

  private constructor(ciphersuite: Ciphersuite, state: GroupState) {
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
    const state = await createGroup({
      cs,
      ciphersuite: input.ciphersuite,
      groupId: input.groupId,
      credential: credentialOf(input.credential),
      signaturePublicKey: input.signaturePublicKey,
      signaturePrivateKey: input.signaturePrivateKey,
      capabilities: leafCapabilities(false),
      notBefore: BigInt(input.notBefore),
      notAfter: BigInt(input.notAfter),
      extensions: [REQUIRED_CAPABILITIES_CORECRYPTO],
    });
    return new MlsGroup(input.ciphersuite, state);
  }

  /** The engine state bytes (secret): our versioned encoding, src/mls/group/stateEncoding.ts. */
  encode(): Uint8Array {
    return encodeGroupState(this.#state);
  }

  /** `encode()` written into `w` (the caller's vector), and a capacity hint for it. */
  encodeInto(w: Writer): void {
    writeGroupState(w, this.#state);
  }

  encodedSizeHint(): number {
    return groupStateSizeHint(this.#state);
  }

  /** Inverse of `encode()`; `UnsupportedConversationState` when the bytes are not a whole state. */
  static async decode(ciphersuite: Ciphersuite, bytes: Uint8Array): Promise<MlsGroup> {
    const cs = await suiteImpl(ciphersuite);
    return new MlsGroup(ciphersuite, decodeGroupState(bytes, cs, ciphersuite));
  }

  /** False when an operation on another copy consumed secrets this one still refers to (§9.2): read it again. */
  isUsable(): boolean {
    return isIntact(this.#state);
  }

  groupId(): Uint8Array {
    return Uint8Array.from(this.#state.context.groupId);
  }

  epoch(): bigint {
    return this.#state.context.epoch;
  }

  /** False once a commit removed us (§12.4.2): the state is kept but can no longer send. */
  isActive(): boolean {
    return this.#state.active;
  }

  /** Proposals received and not yet committed (§12.1); the next commit includes them by reference. */
  pendingProposals(): number {
    return this.#state.pending.length;
  }

  ownLeafIndex(): number {
    return this.#state.ownLeaf;
  }

  members(): MemberLeaf[] {
    return treeMembers(this.#state.tree).map((m) => memberOf(m.leaf, m.leafIndex));
  }

  /** Public keys of every non-blank parent node (for §7.3 encryption key uniqueness). */
  parentEncryptionKeys(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const tree = this.#state.tree;
    for (let i = 1; i < tree.length; i += 2) {
      const n = tree[i];
      if (n?.nodeType === 2) out.push(n.parent.encryptionKey);
    }
    return out;
  }

  /**
   * One Commit (§12.4) of the pending proposals (by reference), Removes for `removeLeaves` and
   * Adds for `adds` (by value), with an UpdatePath when required or when there is nothing else
   * (a self-update). Sent as PublicMessage, like CoreCrypto (whose default wire policy rejects
   * encrypted commits). The caller authenticated the added credentials (`authenticateKeyPackage`).
   */
  async commit(input: {
    adds?: readonly { readonly keyPackage: KeyPackage; readonly bytes?: Uint8Array }[];
    removeLeaves?: readonly number[];
    /** The caller verified every package in `adds` (§10.1, `Keypackage.verify`) at `policy.now`. */
    addsVerified?: boolean;
    /** Always include an UpdatePath (a self-update), whatever the proposals require. */
    selfUpdate?: boolean;
    policy: ReceivePolicy;
  }): Promise<CommitOutput> {
    const adds = input.adds ?? [];
    const removes = input.removeLeaves ?? [];
    const nothingElse = adds.length === 0 && removes.length === 0 && this.#state.pending.length === 0;
    const out = await createCommit(this.#state, {
      adds,
      removes,
      forcePath: input.selfUpdate === true || nothingElse,
      now: seconds(input.policy),
      authenticationService: ALREADY_AUTHENTICATED,
      ...(input.addsVerified === true ? { verifiedKeyPackages: new Set(adds.map((a) => a.keyPackage)) } : {}),
    });
    return {
      group: new MlsGroup(this.ciphersuite, out.state),
      commit: out.commit,
      welcome: out.welcome,
      groupInfo: out.groupInfo,
    };
  }

  /** RFC 9420 §6.3: an application message as MLSMessage(PrivateMessage). */
  async encrypt(plaintext: Uint8Array): Promise<{ group: MlsGroup; message: Uint8Array }> {
    const out = await encryptApplication(this.#state, Uint8Array.from(plaintext));
    return { group: new MlsGroup(this.ciphersuite, out.state), message: out.message };
  }

  /**
   * Process an incoming MLSMessage (PrivateMessage or PublicMessage, §6): application data is
   * returned, proposals are checked and stored, commits are verified and merged (§12.4.2).
   */
  async process(bytes: Uint8Array, policy: ReceivePolicy): Promise<ProcessOutput> {
    if (!(bytes instanceof Uint8Array))
      throw new MlsKeypackagesError(ErrorCode.InvalidMessage, "expected the message as a Uint8Array");
    const gate = new AuthenticationGate(policy.authenticationService);
    const r = await receiveMessage(this.#state, bytes, {
      now: seconds(policy),
      authenticationService: gate,
    }).catch((e: unknown) => gate.explain(e));
    const group = new MlsGroup(this.ciphersuite, r.state);
    const sender =
      r.senderLeaf === undefined
        ? undefined
        : memberOf(
            r.senderLeaf,
            r.sender.senderType === SenderTypes.member ? r.sender.leafIndex : r.state.ownLeaf,
          );
    if (r.kind === "application")
      return { group, kind: "application", applicationData: r.data, sender, epochChanged: false };
    if (r.kind === "proposal")
      return { group, kind: "proposal", applicationData: undefined, sender, epochChanged: false };
    const committer =
      r.senderLeaf === undefined || r.senderLeafIndex === undefined
        ? sender
        : memberOf(r.senderLeaf, r.senderLeafIndex);
    return { group, kind: "commit", applicationData: undefined, sender: committer, epochChanged: true };
  }

  /** Decode an MLSMessage(Welcome) (§12.4.3.1); `InvalidWelcome` when malformed. */
  static parseWelcome(bytes: Uint8Array): ParsedWelcome {
    if (!(bytes instanceof Uint8Array))
      throw new MlsKeypackagesError(ErrorCode.InvalidWelcome, "expected the Welcome as a Uint8Array");
    const welcome = parseWelcome(bytes);
    return { ciphersuite: welcome.ciphersuite, newMembers: welcome.newMembers, welcome };
  }

  /**
   * Join from a Welcome (§12.4.3.1) with one of our key packages: every check of the engine's
   * `verifyWelcome` (group secrets, PSKs, GroupInfo, ratchet tree with every leaf at the session
   * clock and through the authentication service, our own leaf and package, path secret,
   * confirmation tag), then the state.
   */
  static async join(parsed: ParsedWelcome, keys: JoinKeys, policy: ReceivePolicy): Promise<MlsGroup> {
    const suite = assertCiphersuite(parsed.ciphersuite);
    const cs = await suiteImpl(suite);
    const gate = new AuthenticationGate(policy.authenticationService);
    const joinable = await verifyWelcome(
      cs,
      parsed.welcome,
      {
        keyPackage: keys.keypackage,
        keyPackageRef: keys.keypackageRef,
        initPrivateKey: keys.initPrivateKey,
        encryptionPrivateKey: keys.encryptionPrivateKey,
        signaturePrivateKey: keys.signaturePrivateKey,
      },
      { now: seconds(policy), authenticationService: gate },
    ).catch((e: unknown) => gate.explain(e));
    return new MlsGroup(suite, await joinGroup(joinable));
  }

  /**
   * Join by external commit (§12.4.3.2) from a GroupInfo with `external_pub` (MLSMessage or
   * bare): our new leaf from the credential, optionally removing our old leaf (a resync). The
   * returned group is ours once the Delivery Service accepted `commit`.
   */
  static async externalCommit(input: {
    ciphersuite: Ciphersuite;
    groupInfo: Uint8Array;
    credential: Uint8Array;
    signaturePublicKey: Uint8Array;
    signaturePrivateKey: Uint8Array;
    removeLeaf?: number;
    policy: ReceivePolicy;
  }): Promise<{ group: MlsGroup; commit: Uint8Array; groupInfo: Uint8Array }> {
    const suite = assertCiphersuite(input.ciphersuite);
    const cs = await suiteImpl(suite);
    const gate = new AuthenticationGate(input.policy.authenticationService);
    const out = await createExternalCommit(cs, suite, {
      groupInfo: input.groupInfo,
      leaf: {
        signatureKey: input.signaturePublicKey,
        credential: credentialOf(input.credential),
        capabilities: leafCapabilities(false),
        extensions: [],
      },
      signaturePrivateKey: input.signaturePrivateKey,
      ...(input.removeLeaf === undefined ? {} : { removeLeaf: input.removeLeaf }),
      now: seconds(input.policy),
      authenticationService: gate,
    }).catch((e: unknown) => gate.explain(e));
    return { group: new MlsGroup(suite, out.state), commit: out.commit, groupInfo: out.groupInfo };
  }
}
