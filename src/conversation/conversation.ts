/**
 * Conversations (MLS groups, RFC 9420) on a transaction: create, join from a Welcome, add,
 * remove, self-update, encrypt and decrypt. Every operation reads and writes through the
 * transaction's staged keystore, so an error undoes all of its writes.
 */
import { x509BackendOrUndefined } from "../pki/backend.js";
import { ClientId } from "../credential/clientId.js";
import type { CredentialRef } from "../credential/credentialRef.js";
import { ErrorCode, InvalidKeypackageError, MlsKeypackagesError } from "../errors.js";
import type { ConversationRow } from "../keystore/contract.js";
import { toHex } from "../keystore/staging.js";
import { Keypackage } from "../keypackage/keypackage.js";
import { KEYPACKAGE_DEFAULT_LIFETIME, lifetimeSeconds } from "../keypackage/lifetime.js";
import { assertCiphersuite, type Ciphersuite } from "../mls/ciphersuite.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { parseKeyPackage } from "../mls/keypackage/parse.js";
import type { KeyPackage } from "../mls/keypackage/types.js";
import {
  MlsGroup,
  authenticateKeyPackage,
  type CommitOutput,
  type MemberLeaf,
  type ReceivePolicy,
} from "../mls/group.js";
import { deleteKeypackageRows, loadCredential, type TxScope } from "../transaction/context.js";
import type { AuthenticationService } from "../mls/credential/authentication.js";
import { cachedGroup, forgetGroup, rememberGroup } from "./cache.js";
import { decodeConversationState, encodeConversationState, parseConversationState } from "./stateFormat.js";
import { sendCommitBundle, requireTransport } from "./transport.js";

/** A conversation (group) id: the MLS group_id, opaque bytes chosen by the creator. */
export type ConversationId = Uint8Array;

/** What `decryptMessage` returns (after CoreCrypto's `DecryptedMessage`, loosely). */
export interface DecryptedMessage {
  /** `application`: `message` holds the plaintext; `commit`: a new epoch was merged; `proposal`: stored for a later commit. */
  kind: "application" | "commit" | "proposal";
  /** Application data, for `kind: "application"`. */
  message?: Uint8Array;
  /** Client id of the sending member (as `getClientIds` lists it), when the sender is a member. */
  senderClientId?: ClientId;
  /** True when the message was a commit that moved the conversation to a new epoch. */
  hasEpochChanged: boolean;
  /** False once a commit removed us: the conversation can then only be wiped. */
  isActive: boolean;
  /** The epoch after processing. */
  epoch: bigint;
}

/**
 * Checks of a (valid) key package against the conversation it is added to (RFC 9420 §7.3,
 * §11.1, §12.1.1). Reported as `InvalidKeypackage` with `details.rule` set to one of these.
 */
export type GroupKeypackageRule =
  "group_ciphersuite" | "required_capabilities" | "duplicate_signature_key" | "duplicate_encryption_key";

function groupRuleError(rule: GroupKeypackageRule, index: number, message: string): MlsKeypackagesError {
  return new MlsKeypackagesError(
    ErrorCode.InvalidKeypackage,
    `invalid key package #${index} (${rule}): ${message}`,
    {
      rule,
      index,
    },
  );
}

/** Defers `Keypackage.verify`'s §5.3.1 step to `authenticateKeyPackage` (the session's service). */
const DEFERRED_TO_SESSION_SERVICE: AuthenticationService = { validate: () => ({ ok: true }) };

const CORECRYPTO_REQUIRED_CREDENTIALS = [1, 2]; // Basic, X509: CoreCrypto's required_capabilities

function keyOf(id: ConversationId): string {
  if (!(id instanceof Uint8Array) || id.length === 0) {
    throw new MlsKeypackagesError(
      ErrorCode.ConversationNotFound,
      "a conversation id must be non-empty bytes",
    );
  }
  return toHex(id);
}

function notFound(id: ConversationId): MlsKeypackagesError {
  return new MlsKeypackagesError(ErrorCode.ConversationNotFound, `no such conversation: ${describeId(id)}`);
}

function describeId(id: Uint8Array): string {
  const hex = toHex(id);
  return hex.length > 32 ? `${hex.slice(0, 32)}…` : hex;
}

async function loadRow(scope: TxScope, id: ConversationId): Promise<ConversationRow> {
  const row = await scope.store.get("conversations", keyOf(id));
  if (row === undefined) throw notFound(id);
  return row;
}

interface Loaded {
  row: ConversationRow;
  group: MlsGroup;
}

async function load(scope: TxScope, id: ConversationId): Promise<Loaded> {
  const row = await loadRow(scope, id);
  const key = toHex(row.id);
  let group = cachedGroup(scope.database, key, row.state);
  if (group === undefined) {
    group = await decodeConversationState(row.state);
    rememberGroup(scope.database, key, row.state, group);
  }
  return { row, group };
}

/** One of our stored key packages, parsed strictly (undefined when the row is corrupt). */
function storedKeyPackage(bytes: Uint8Array): KeyPackage | undefined {
  try {
    return parseKeyPackage(bytes);
  } catch {
    return undefined;
  }
}

/** What received leaves are checked against (RFC 9420 §7.3, §5.3.1): the session's clock and authentication service. */
function receivePolicy(scope: TxScope): ReceivePolicy {
  return { now: scope.now(), authenticationService: scope.authenticationService };
}

/**
 * The bytes a member is listed by: its Basic identity; a member without one (an X.509 credential,
 * or an empty identity in a state stored before identities were checked) by its signature public
 * key, unique in the tree (RFC 9420 §7.3) — so that every member is listed, always.
 */
function listedId(m: MemberLeaf): Uint8Array {
  if (m.identity !== undefined && m.identity.length > 0) return m.identity;
  // X.509: the client id in the leaf certificate's SAN, as CoreCrypto lists the member.
  // Without X.509 support loaded, as for a chain naming no client id: the signature key.
  return (
    (m.certificates.length > 0 ? x509BackendOrUndefined()?.clientIdOfChain(m.certificates) : undefined) ??
    m.signatureKey
  );
}

/** Every member (us included) in leaf order with its listed client id, and the group's suite. */
export async function conversationMembers(
  scope: TxScope,
  id: ConversationId,
): Promise<{ ciphersuite: Ciphersuite; members: (MemberLeaf & { clientId: Uint8Array })[] }> {
  const { group } = await load(scope, id);
  return {
    ciphersuite: group.ciphersuite as Ciphersuite,
    members: group.members().map((m) => ({ ...m, clientId: listedId(m) })),
  };
}

function save(scope: TxScope, row: Pick<ConversationRow, "id" | "credentialId">, group: MlsGroup): void {
  const id = Uint8Array.from(row.id);
  const key = toHex(id);
  const state = encodeConversationState(group);
  scope.store.write("conversations", key, { id, credentialId: row.credentialId, state });
  rememberGroup(scope.database, key, state, group);
}

// ── reads ───────────────────────────────────────────────────────────────────

export async function conversationExists(scope: TxScope, id: ConversationId): Promise<boolean> {
  return (await scope.store.get("conversations", keyOf(id))) !== undefined;
}

/** Current epoch (RFC 9420 §8), read from our state header without decoding the group. */
export async function conversationEpoch(scope: TxScope, id: ConversationId): Promise<bigint> {
  return parseConversationState((await loadRow(scope, id)).state).header.epoch;
}

export async function conversationCiphersuite(scope: TxScope, id: ConversationId): Promise<Ciphersuite> {
  return parseConversationState((await loadRow(scope, id)).state).header.ciphersuite;
}

/** Client ids of every member, in leaf order (us included); see `listedId`. */
export async function getClientIds(scope: TxScope, id: ConversationId): Promise<ClientId[]> {
  const { group } = await load(scope, id);
  return group.members().map((m) => new ClientId(listedId(m)));
}

// ── lifecycle ───────────────────────────────────────────────────────────────

/**
 * RFC 9420 §11: a new group with us as its only member, our leaf signed with the
 * credential. Refuses an existing id with `ConversationAlreadyExists`.
 */
export async function createConversation(
  scope: TxScope,
  id: ConversationId,
  credentialRef: CredentialRef,
): Promise<void> {
  const key = keyOf(id);
  const cred = await loadCredential(scope, credentialRef);
  if ((await scope.store.get("conversations", key)) !== undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.ConversationAlreadyExists,
      `conversation ${describeId(id)} already exists`,
    );
  }
  const { notBefore, notAfter } = lifetimeSeconds(scope.now(), KEYPACKAGE_DEFAULT_LIFETIME);
  const group = await MlsGroup.create({
    ciphersuite: assertCiphersuite(cred.ciphersuite),
    groupId: id,
    credential: cred.credential,
    signaturePublicKey: cred.publicKey,
    signaturePrivateKey: cred.signaturePrivateKey,
    notBefore,
    notAfter,
  });
  save(scope, { id, credentialId: cred.id }, group);
}

/** Delete the local state of a conversation (nothing is sent). */
export async function wipeConversation(scope: TxScope, id: ConversationId): Promise<void> {
  await loadRow(scope, id);
  scope.store.delete("conversations", keyOf(id));
  forgetGroup(scope.database, keyOf(id));
}

// ── commits ─────────────────────────────────────────────────────────────────

/** Send the commit; merge (store the new epoch) only when the delivery service accepted it. */
async function sendAndMerge(scope: TxScope, row: ConversationRow, out: CommitOutput): Promise<void> {
  await sendCommitBundle(scope.transport(), {
    commit: out.commit,
    ...(out.welcome === undefined ? {} : { welcome: out.welcome }),
    groupInfo: out.groupInfo,
  });
  save(scope, row, out.group);
}

/**
 * Validate key packages for this group (RFC 9420 §10.1, §12.1.1): each verifies at the session
 * time, has the group's suite, supports its required capabilities, and no two leaves of the
 * resulting tree share a signature key or an encryption key (§7.3). The engine checks these
 * rules again (§12.2); here each failure names the caller's package (`details.index`). Then the
 * session's authentication service is asked about each credential (§5.3.1, `CredentialRejected`).
 */
async function checkKeypackagesForGroup(
  scope: TxScope,
  group: MlsGroup,
  keypackages: readonly Keypackage[],
): Promise<void> {
  const now = scope.now();
  const members = group.members();
  // compared byte-wise: a few packages against the tree, no hex string per member
  const signatureKeys = members.map((m) => m.signatureKey);
  const encryptionKeys = [...members.map((m) => m.encryptionKey), ...group.parentEncryptionKeys()];
  const holds = (keys: readonly Uint8Array[], key: Uint8Array): boolean =>
    keys.some((k) => bytesEqual(k, key));
  for (const [i, kp] of keypackages.entries()) {
    if (!(kp instanceof Keypackage))
      throw new InvalidKeypackageError("decode", `key package #${i} is not a Keypackage`);
    // §10.1 at the session time; the credential goes to the session's service below (once, and
    // refused as `CredentialRejected` naming the package)
    await kp.verify({ now, authenticationService: DEFERRED_TO_SESSION_SERVICE });
    if (kp.ciphersuite() !== group.ciphersuite) {
      throw groupRuleError(
        "group_ciphersuite",
        i,
        `suite ${kp.ciphersuite()}, the conversation's ${group.ciphersuite}`,
      );
    }
    const creds = kp.capabilities().credentials;
    if (!CORECRYPTO_REQUIRED_CREDENTIALS.every((c) => creds.includes(c))) {
      throw groupRuleError(
        "required_capabilities",
        i,
        "Basic and X509 credential types must be in its capabilities",
      );
    }
    const sig = kp.signatureKey();
    if (holds(signatureKeys, sig)) {
      throw groupRuleError(
        "duplicate_signature_key",
        i,
        "signature key already used by a member or another added package",
      );
    }
    signatureKeys.push(sig);
    const enc = kp.encryptionKey();
    if (holds(encryptionKeys, enc)) {
      throw groupRuleError(
        "duplicate_encryption_key",
        i,
        "encryption key already in the ratchet tree or another added package",
      );
    }
    encryptionKeys.push(enc);
  }
  const policy = receivePolicy(scope);
  for (const [i, kp] of keypackages.entries()) await authenticateKeyPackage(policy, kp.parsed, i);
}

/**
 * Add clients (RFC 9420 §12.1.1 Add proposals, committed by value): one commit plus a Welcome
 * carrying the ratchet tree (§12.4.3.3) and the new GroupInfo, handed to the transport.
 */
export async function addClientsToConversation(
  scope: TxScope,
  id: ConversationId,
  keypackages: readonly Keypackage[],
): Promise<void> {
  requireTransport(scope.transport());
  if (!Array.isArray(keypackages))
    throw new InvalidKeypackageError("decode", "expected an array of Keypackage");
  const { row, group } = await load(scope, id);
  if (keypackages.length === 0) return;
  await checkKeypackagesForGroup(scope, group, keypackages);
  // each package passed kp.verify() just above (§10.1 at the session time, credential
  // authenticated): the engine need not verify it again
  const out = await group.commit({
    adds: keypackages.map((kp) => ({ keyPackage: kp.parsed, bytes: kp.serialize() })),
    addsVerified: true,
    policy: receivePolicy(scope),
  });
  await sendAndMerge(scope, row, out);
}

/** Remove clients by client id (RFC 9420 §12.1.3 Remove proposals, committed with an UpdatePath). */
export async function removeClientsFromConversation(
  scope: TxScope,
  id: ConversationId,
  clientIds: readonly ClientId[],
): Promise<void> {
  requireTransport(scope.transport());
  const { row, group } = await load(scope, id);
  const members = group.members();
  const own = group.ownLeafIndex();
  const leaves = new Set<number>();
  for (const clientId of clientIds) {
    if (!(clientId instanceof ClientId)) {
      throw new MlsKeypackagesError(ErrorCode.InvalidClientId, "expected ClientId values");
    }
    const matches = members.filter((m) => bytesEqual(listedId(m), clientId.bytes()));
    if (matches.length === 0) {
      throw new MlsKeypackagesError(
        ErrorCode.ClientNotFound,
        `${clientId.toString()} is not a member of the conversation`,
      );
    }
    for (const m of matches) {
      if (m.leafIndex === own) {
        throw new MlsKeypackagesError(
          ErrorCode.CannotRemoveSelf,
          "a member cannot remove itself with a commit (RFC 9420 §12.2); wipe the conversation instead",
        );
      }
      leaves.add(m.leafIndex);
    }
  }
  if (leaves.size === 0) return;
  const out = await group.commit({ removeLeaves: [...leaves], policy: receivePolicy(scope) });
  await sendAndMerge(scope, row, out);
}

/** Self-update (RFC 9420 §12.4): an empty commit whose UpdatePath gives us a fresh leaf and path keys. */
export async function updateKeyingMaterial(scope: TxScope, id: ConversationId): Promise<void> {
  requireTransport(scope.transport());
  const { row, group } = await load(scope, id);
  const out = await group.commit({ selfUpdate: true, policy: receivePolicy(scope) });
  await sendAndMerge(scope, row, out);
}

/**
 * Commit the proposals received so far (e.g. a delivery service's external Remove proposals,
 * RFC 9420 §12.1.8), by reference; a no-op when there are none. Same transport semantics.
 */
export async function commitPendingProposals(scope: TxScope, id: ConversationId): Promise<void> {
  requireTransport(scope.transport());
  const { row, group } = await load(scope, id);
  if (group.pendingProposals() === 0) return;
  const out = await group.commit({ policy: receivePolicy(scope) });
  await sendAndMerge(scope, row, out);
}

// ── Welcome ─────────────────────────────────────────────────────────────────

/**
 * Join a conversation from an MLSMessage(Welcome) (RFC 9420 §12.4.3.1). The key package is
 * found through the `new_member` KeyPackageRefs of the Welcome's encrypted group secrets;
 * on success it is consumed (all three tables) in the same transaction that stores the
 * conversation — unless it is a last-resort package, which is kept. Any error leaves every
 * key package in place (the transaction wrapper undoes this call's writes).
 */
export async function processWelcomeMessage(scope: TxScope, welcome: Uint8Array): Promise<ConversationId> {
  const parsed = MlsGroup.parseWelcome(welcome);
  let kpRow;
  let kpRef: Uint8Array | undefined;
  for (const ref of parsed.newMembers) {
    kpRow = await scope.store.get("keypackages", toHex(ref));
    kpRef = ref;
    if (kpRow !== undefined) break;
  }
  if (kpRow === undefined || kpRef === undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.OrphanWelcome,
      `none of the ${parsed.newMembers.length} key package(s) this Welcome is for is in this database`,
      { recipients: parsed.newMembers.length },
    );
  }
  if (kpRow.ciphersuite !== parsed.ciphersuite) {
    throw new MlsKeypackagesError(
      ErrorCode.InvalidWelcome,
      `the Welcome uses cipher suite ${parsed.ciphersuite}, our key package ${kpRow.ciphersuite}`,
    );
  }
  const [hpke, enc, cred] = await Promise.all([
    scope.store.get("hpke_private_keys", kpRow.initKey),
    scope.store.get("encryption_keypairs", kpRow.encryptionKey),
    scope.store.get("credentials", kpRow.credentialId),
  ]);
  const decoded = storedKeyPackage(kpRow.keypackage);
  if (hpke === undefined || enc === undefined || cred === undefined || decoded === undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.KeystoreError,
      "the key package this Welcome is for has missing or corrupt rows",
    );
  }
  const group = await MlsGroup.join(
    parsed,
    {
      keypackage: decoded,
      // The row was found under this ref, which we computed (RFC 9420 §5.2) when generating it.
      keypackageRef: kpRef,
      initPrivateKey: hpke.privateKey,
      encryptionPrivateKey: enc.privateKey,
      signaturePrivateKey: cred.signaturePrivateKey,
    },
    receivePolicy(scope),
  );
  const id = group.groupId();
  if ((await scope.store.get("conversations", toHex(id))) !== undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.ConversationAlreadyExists,
      `conversation ${describeId(id)} already exists; the key package is kept`,
    );
  }
  save(scope, { id, credentialId: cred.id }, group);
  if (!kpRow.lastResort) deleteKeypackageRows(scope.store, kpRow);
  return id;
}

// ── external commit ─────────────────────────────────────────────────────────

/** What `joinByExternalCommit` returns. */
export interface ExternalCommitJoin {
  /** The conversation joined: the group's `group_id`. */
  conversationId: ConversationId;
  /** MLSMessage(PublicMessage) carrying our external commit, as handed to the transport. */
  commit: Uint8Array;
}

/**
 * Join a conversation by external commit (RFC 9420 §12.4.3.2) from its GroupInfo
 * (MLSMessage(GroupInfo) or a bare GroupInfo with the `external_pub` extension and the ratchet
 * tree in `ratchet_tree`): the GroupInfo's signature and tree are verified like a Welcome's
 * (every leaf at the session clock and through the authentication service), our new leaf is made
 * from the credential, and the commit is handed to the transport with the new epoch's GroupInfo.
 * Joined — the conversation stored — only when the transport answers "success" (same semantics
 * as our other commits). No key package is used: this is the way in after `OrphanWelcome`.
 */
export async function joinByExternalCommit(
  scope: TxScope,
  groupInfo: Uint8Array,
  credentialRef: CredentialRef,
): Promise<ExternalCommitJoin> {
  requireTransport(scope.transport());
  if (!(groupInfo instanceof Uint8Array))
    throw new MlsKeypackagesError(ErrorCode.InvalidGroupInfo, "expected the GroupInfo as a Uint8Array");
  const cred = await loadCredential(scope, credentialRef);
  const out = await MlsGroup.externalCommit({
    ciphersuite: assertCiphersuite(cred.ciphersuite),
    groupInfo,
    credential: cred.credential,
    signaturePublicKey: cred.publicKey,
    signaturePrivateKey: cred.signaturePrivateKey,
    policy: receivePolicy(scope),
  });
  const id = out.group.groupId();
  if ((await scope.store.get("conversations", toHex(id))) !== undefined) {
    throw new MlsKeypackagesError(
      ErrorCode.ConversationAlreadyExists,
      `conversation ${describeId(id)} already exists; wipe it before joining again`,
    );
  }
  await sendCommitBundle(scope.transport(), { commit: out.commit, groupInfo: out.groupInfo });
  save(scope, { id, credentialId: cred.id }, out.group);
  return { conversationId: id, commit: Uint8Array.from(out.commit) };
}

// ── messages ────────────────────────────────────────────────────────────────

/** RFC 9420 §6.3: encrypt application data as an MLSMessage(PrivateMessage). */
export async function encryptMessage(
  scope: TxScope,
  id: ConversationId,
  plaintext: Uint8Array,
): Promise<Uint8Array> {
  if (!(plaintext instanceof Uint8Array)) {
    throw new MlsKeypackagesError(ErrorCode.InvalidMessage, "the plaintext must be a Uint8Array");
  }
  const { row, group } = await load(scope, id);
  const out = await group.encrypt(plaintext);
  save(scope, row, out.group);
  return out.message;
}

/**
 * Decrypt / process an incoming MLSMessage: application messages return their plaintext,
 * commits (adds, removes, updates) are verified and merged, proposals stored (RFC 9420 §12).
 */
export async function decryptMessage(
  scope: TxScope,
  id: ConversationId,
  message: Uint8Array,
): Promise<DecryptedMessage> {
  if (!(message instanceof Uint8Array)) {
    throw new MlsKeypackagesError(ErrorCode.InvalidMessage, "the message must be a Uint8Array");
  }
  const { row, group } = await load(scope, id);
  const out = await group.process(message, receivePolicy(scope));
  save(scope, row, out.group);
  const result: DecryptedMessage = {
    kind: out.kind,
    hasEpochChanged: out.epochChanged,
    isActive: out.group.isActive(),
    epoch: out.group.epoch(),
  };
  if (out.applicationData !== undefined) result.message = out.applicationData;
  const sender = senderClientId(out.sender);
  if (sender !== undefined) result.senderClientId = sender;
  return result;
}

function senderClientId(leaf: MemberLeaf | undefined): ClientId | undefined {
  return leaf === undefined ? undefined : new ClientId(listedId(leaf));
}
