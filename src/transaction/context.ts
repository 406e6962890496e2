import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import type { Credential } from "../credential/credential.js";
import { CredentialRef } from "../credential/credentialRef.js";
import { ClientId } from "../credential/clientId.js";
import type { CredentialType } from "../credential/credentialType.js";
import type { CredentialRow, KeypackageRow } from "../keystore/contract.js";
import type { Database } from "../keystore/database.js";
import { StagedKeystore, toHex } from "../keystore/staging.js";
import { Keypackage } from "../keypackage/keypackage.js";
import { KeypackageRef } from "../keypackage/keypackageRef.js";
import { KEYPACKAGE_DEFAULT_LIFETIME, checkLifetime, lifetimeSeconds } from "../keypackage/lifetime.js";
import { assertCiphersuite, type Ciphersuite } from "../mls/ciphersuite.js";
import type { BuildKeyPackageInput, BuiltKeyPackage } from "../mls/keypackage/build.js";
import { parseKeyPackage } from "../mls/keypackage/parse.js";
import { buildKeypackage, buildKeypackages } from "../keypackage/batch.js";
import { bytesEqual } from "../mls/crypto/bytes.js";
import { capLifetimeToCertificate } from "../pki/lifetime.js";
import { x509AuthenticationService, type X509Policy } from "../pki/authentication.js";
import {
  listPkiEntries,
  loadTrustStore,
  removePkiEntry,
  stagePkiEntries,
  type PkiEntry,
  type PkiEntryKind,
} from "../pki/environment.js";
import type { PemOrDer } from "../pki/certificate.js";
import type { E2eiConversationState } from "../pki/identity.js";
import * as ids from "../conversation/identities.js";
import type { MemberIdentity } from "../conversation/identities.js";
import * as conv from "../conversation/conversation.js";
import type { ConversationId, DecryptedMessage, ExternalCommitJoin } from "../conversation/conversation.js";
import type { MlsTransport } from "../conversation/transport.js";
import {
  defaultAuthenticationService,
  type AuthenticationService,
} from "../mls/credential/authentication.js";

/** Filters for `findCredentials`; every given field must match. */
export interface CredentialFilters {
  clientId?: ClientId;
  ciphersuite?: Ciphersuite;
  credentialType?: CredentialType;
  publicKey?: Uint8Array;
}

/**
 * A key package consumed by a Welcome this transaction processed, reported after the transaction
 * finished (see `CoreCrypto.onKeypackageConsumed`).
 */
export interface KeypackageConsumedEvent {
  /** The conversation joined. */
  conversationId: Uint8Array;
  /** Hex refs of the packages deleted; empty when a last-resort package was used (it is kept). */
  refs: string[];
  /** A last-resort package was used (RFC 9750: it should be replaced soon). */
  lastResort: boolean;
}

export interface GenerateKeypackageOptions {
  /** Make a last-resort package (RFC 9420 §17.3 `last_resort` extension); it survives Welcome processing. */
  lastResort?: boolean;
}

/**
 * What a transaction offers to the modules that implement its operations
 * (key packages here; conversations in `conversation/`).
 * @internal
 */
export interface TxScope {
  readonly store: StagedKeystore;
  readonly database: Database;
  /** The session clock: every time check (lifetimes of ours and of received leaves, RFC 9420 §7.3). */
  now(): Date;
  /** The session's authentication service (RFC 9420 §5.3.1), asked about every credential we accept. */
  readonly authenticationService: AuthenticationService;
  /** The session's MLS transport at the time of the call (undefined until provided). */
  transport(): MlsTransport | undefined;
}

/**
 * A transaction on a session's database. Every write is staged in memory and applied
 * atomically by `finish()`; `abort()` discards them. Reads see the staged writes.
 * After `finish()` or `abort()` every call rejects with `TransactionFinished`.
 * An error thrown by one call undoes that call's staged writes only.
 */
export class TransactionContext {
  readonly #scope: TxScope;
  readonly #release: () => void;
  #state: "open" | "finishing" | "finished" = "open";
  #busy: Promise<unknown> = Promise.resolve();
  readonly #consumed: KeypackageConsumedEvent[] = [];
  readonly #onConsumed: ((events: KeypackageConsumedEvent[]) => void) | undefined;

  /** @internal created by `CoreCrypto.newTransaction()`. */
  constructor(
    database: Database,
    clock: () => Date,
    release: () => void,
    transport: () => MlsTransport | undefined = () => undefined,
    authenticationService: AuthenticationService = defaultAuthenticationService,
    onConsumed?: (events: KeypackageConsumedEvent[]) => void,
    x509Policy: X509Policy = {},
  ) {
    this.#onConsumed = onConsumed;
    const store = new StagedKeystore(database.keystore);
    this.#scope = {
      store,
      database,
      now: clock,
      transport,
      // X.509 credentials are validated against this transaction's view of the PKI environment.
      authenticationService: x509AuthenticationService(
        authenticationService,
        () => loadTrustStore(store),
        clock,
        x509Policy,
      ),
    };
    this.#release = release;
  }

  /** @internal run one operation: serialized, and rolled back on error. */
  protected run<T>(fn: (scope: TxScope) => Promise<T>): Promise<T> {
    const go = async (): Promise<T> => {
      if (this.#state !== "open") {
        throw new MlsKeypackagesError(
          ErrorCode.TransactionFinished,
          "this transaction has already finished or been aborted",
        );
      }
      const mark = this.#scope.store.mark();
      try {
        return await fn(this.#scope);
      } catch (err) {
        this.#scope.store.rollbackTo(mark);
        throw err;
      }
    };
    const p = this.#busy.then(go, go);
    this.#busy = p.catch(() => undefined);
    return p;
  }

  /** Whether `finish()` or `abort()` was called. */
  get isFinished(): boolean {
    return this.#state !== "open";
  }

  /** Commit every staged write atomically and end the transaction. */
  async finish(): Promise<void> {
    await this.#busy;
    if (this.#state !== "open") {
      throw new MlsKeypackagesError(
        ErrorCode.TransactionFinished,
        "this transaction has already finished or been aborted",
      );
    }
    this.#state = "finishing";
    try {
      await this.#scope.database.keystore.commit(this.#scope.store.ops);
    } finally {
      this.#state = "finished";
      this.#release();
    }
    if (this.#consumed.length > 0 && this.#onConsumed !== undefined) {
      try {
        this.#onConsumed(this.#consumed.splice(0));
      } catch {
        // A listener's error never fails a committed transaction.
      }
    }
  }

  /** Discard every staged write and end the transaction. */
  async abort(): Promise<void> {
    await this.#busy;
    if (this.#state !== "open") {
      throw new MlsKeypackagesError(
        ErrorCode.TransactionFinished,
        "this transaction has already finished or been aborted",
      );
    }
    this.#state = "finished";
    this.#release();
  }

  // ── credentials ────────────────────────────────────────────────────────────

  /** Store a credential and its signature key; returns its stable reference. */
  addCredential(credential: Credential): Promise<CredentialRef> {
    return this.run(async ({ store, now }) => {
      const ref = new CredentialRef(
        credential.clientId,
        credential.ciphersuite,
        credential.type,
        credential.publicKey,
      );
      const row: CredentialRow = {
        id: ref.id,
        clientId: credential.clientId.bytes(),
        ciphersuite: credential.ciphersuite,
        credentialType: credential.type,
        publicKey: Uint8Array.from(credential.publicKey),
        credential: Uint8Array.from(credential.encoded),
        signaturePrivateKey: Uint8Array.from(credential.signaturePrivateKey()),
        createdAt: now().getTime(),
      };
      const existing = await store.get("credentials", ref.id);
      if (existing === undefined) store.write("credentials", ref.id, row);
      return ref;
    });
  }

  /** Credentials matching every given filter. */
  findCredentials(filters: CredentialFilters = {}): Promise<CredentialRef[]> {
    return this.run(async ({ store }) => {
      const rows = await store.all("credentials");
      return rows
        .filter(
          (r) =>
            (filters.clientId === undefined || bytesEqual(r.clientId, filters.clientId.bytes())) &&
            (filters.ciphersuite === undefined || r.ciphersuite === filters.ciphersuite) &&
            (filters.credentialType === undefined || r.credentialType === filters.credentialType) &&
            (filters.publicKey === undefined || bytesEqual(r.publicKey, filters.publicKey)),
        )
        .sort((a, b) => a.createdAt - b.createdAt)
        .map(credentialRefOfRow);
    });
  }

  /**
   * Remove a credential: first its key packages (all three tables), then the credential.
   * Refuses with `CredentialStillInUse` while a conversation uses it.
   */
  removeCredential(ref: CredentialRef): Promise<void> {
    return this.run(async (scope) => {
      await loadCredential(scope, ref);
      const conversations = await scope.store.conversationsForCredential(ref.id);
      if (conversations.length > 0) {
        throw new MlsKeypackagesError(
          ErrorCode.CredentialStillInUse,
          `the credential is used by ${conversations.length} conversation(s)`,
          { conversations: conversations.length },
        );
      }
      await removeKeypackagesOf(scope, ref.id);
      scope.store.delete("credentials", ref.id);
    });
  }

  // ── key packages ───────────────────────────────────────────────────────────

  /**
   * Generate and store a key package for the credential (plus its HPKE init private key and
   * leaf encryption key pair). `lifetime` in ms, > 0 and ≤ `KEYPACKAGE_DEFAULT_LIFETIME`
   * (the default); `not_before` is set 1 h in the past for clock skew.
   */
  generateKeypackage(
    credentialRef: CredentialRef,
    lifetime: number = KEYPACKAGE_DEFAULT_LIFETIME,
    options: GenerateKeypackageOptions = {},
  ): Promise<Keypackage> {
    return this.run((scope) => generateOne(scope, credentialRef, lifetime, options));
  }

  /**
   * Generate `count` key packages at once. Large batches use every core (Node.js
   * `worker_threads`); the result is the same as `count` calls to `generateKeypackage`.
   */
  generateKeypackages(
    credentialRef: CredentialRef,
    count: number,
    lifetime: number = KEYPACKAGE_DEFAULT_LIFETIME,
    options: GenerateKeypackageOptions = {},
  ): Promise<Keypackage[]> {
    return this.run(async (scope) => {
      if (!Number.isSafeInteger(count) || count < 0) {
        throw new MlsKeypackagesError(
          ErrorCode.InvalidArgument,
          `count must be a non-negative integer, got ${String(count)}`,
        );
      }
      const input = await prepareGeneration(scope, credentialRef, lifetime, options);
      const built = await buildKeypackages({ ...input, count });
      return built.map((b) => stageKeypackage(scope, input, b));
    });
  }

  /** Refs of every stored key package, this transaction's included. Loads no key and parses no package. */
  getKeypackageRefs(): Promise<KeypackageRef[]> {
    return this.run(async ({ store, now }) => {
      const metas = await store.listKeypackageMeta();
      return metas.map(
        (m) =>
          new KeypackageRef({
            hashRef: m.ref,
            ciphersuite: m.ciphersuite as Ciphersuite,
            credentialType: m.credentialType as CredentialType,
            notBefore: m.notBefore,
            notAfter: m.notAfter,
            lastResort: m.lastResort,
            clock: now,
          }),
      );
    });
  }

  /** Load a stored key package by ref (undefined when absent). */
  getKeypackage(ref: KeypackageRef | Uint8Array): Promise<Keypackage | undefined> {
    return this.run(async ({ store, now }) => {
      const row = await store.get("keypackages", refHex(ref));
      if (row === undefined) return undefined;
      let parsed;
      try {
        parsed = parseKeyPackage(row.keypackage);
      } catch (err) {
        throw new MlsKeypackagesError(
          ErrorCode.KeystoreError,
          "a stored key package does not decode",
          {},
          { cause: err },
        );
      }
      return Keypackage.fromParsed(row.keypackage, parsed, now);
    });
  }

  /** Delete a key package, its HPKE init private key and its leaf encryption key pair. Silent when absent. */
  removeKeypackage(ref: KeypackageRef | Uint8Array): Promise<void> {
    return this.run(async ({ store }) => {
      const row = await store.get("keypackages", refHex(ref));
      if (row !== undefined) deleteKeypackageRows(store, row);
    });
  }

  /** Remove every key package generated from the credential (found through the credential index). */
  removeKeypackagesFor(credentialRef: CredentialRef): Promise<void> {
    return this.run(async (scope) => {
      await loadCredential(scope, credentialRef);
      await removeKeypackagesOf(scope, credentialRef.id);
    });
  }
  // ── conversations ──────────────────────────────────────────────────────────

  /**
   * Create a conversation (RFC 9420 §11): a group whose only member is us, with the given
   * credential. The id is the MLS group id. `ConversationAlreadyExists` if it exists.
   */
  createConversation(conversationId: ConversationId, credentialRef: CredentialRef): Promise<void> {
    return this.run((scope) => conv.createConversation(scope, conversationId, credentialRef));
  }

  conversationExists(conversationId: ConversationId): Promise<boolean> {
    return this.run((scope) => conv.conversationExists(scope, conversationId));
  }

  /** The conversation's current epoch, as a bigint (CoreCrypto's type; RFC 9420 epochs are uint64). */
  conversationEpoch(conversationId: ConversationId): Promise<bigint> {
    return this.run((scope) => conv.conversationEpoch(scope, conversationId));
  }

  conversationCiphersuite(conversationId: ConversationId): Promise<Ciphersuite> {
    return this.run((scope) => conv.conversationCiphersuite(scope, conversationId));
  }

  /**
   * Client ids of every member, ourselves included, in leaf order: the Basic identity; a member
   * without one (an X.509 credential, or a state stored before identities were checked) is listed
   * by its signature public key, so that no member is ever left out.
   */
  getClientIds(conversationId: ConversationId): Promise<ClientId[]> {
    return this.run((scope) => conv.getClientIds(scope, conversationId));
  }

  /** Delete the conversation's local state. `ConversationNotFound` if absent. */
  wipeConversation(conversationId: ConversationId): Promise<void> {
    return this.run((scope) => conv.wipeConversation(scope, conversationId));
  }

  /**
   * Add clients by their key packages: verify them (`InvalidKeypackage`), ask the authentication
   * service about each credential (`CredentialRejected`), create one commit plus
   * a Welcome and GroupInfo, and send them through the transport. Merged only on "success";
   * "retry" rejects with `TransportRetry`, "abort" with `MessageRejectedError`, and then the
   * conversation is unchanged.
   */
  addClientsToConversation(conversationId: ConversationId, keypackages: Keypackage[]): Promise<void> {
    return this.run((scope) => conv.addClientsToConversation(scope, conversationId, keypackages));
  }

  /** Remove clients by client id (same transport semantics as `addClientsToConversation`). */
  removeClientsFromConversation(conversationId: ConversationId, clientIds: ClientId[]): Promise<void> {
    return this.run((scope) => conv.removeClientsFromConversation(scope, conversationId, clientIds));
  }

  /** Rotate our leaf and path keys with an empty commit (same transport semantics). */
  updateKeyingMaterial(conversationId: ConversationId): Promise<void> {
    return this.run((scope) => conv.updateKeyingMaterial(scope, conversationId));
  }

  /** Commit the proposals received so far (a no-op when none); same transport semantics. */
  commitPendingProposals(conversationId: ConversationId): Promise<void> {
    return this.run((scope) => conv.commitPendingProposals(scope, conversationId));
  }

  /**
   * Join from an MLSMessage-framed Welcome; returns the conversation id. Consumes the key
   * package it was sent to (kept if last-resort). Every leaf of the tree is validated (RFC 9420
   * §12.4.3.1, lifetimes at the session clock) and authenticated. Errors: `OrphanWelcome`,
   * `InvalidWelcome`, `CredentialRejected`, `ConversationAlreadyExists` — and then no key package
   * is lost.
   */
  processWelcomeMessage(welcome: Uint8Array): Promise<ConversationId> {
    return this.run(async (scope) => {
      const mark = scope.store.mark();
      const conversationId = await conv.processWelcomeMessage(scope, welcome);
      // Reported after finish(): the package deleted by this call, or none for a last-resort one.
      const refs = scope.store.ops
        .slice(mark)
        .filter((op) => op.kind === "delete" && op.table === "keypackages")
        .map((op) => op.key);
      this.#consumed.push({ conversationId, refs, lastResort: refs.length === 0 });
      return conversationId;
    });
  }

  /**
   * Join by external commit (RFC 9420 §12.4.3.2) from a conversation's GroupInfo (MLSMessage or
   * bare, with `external_pub` and `ratchet_tree`), with a new leaf for the credential: the way in
   * when no Welcome can be processed (`OrphanWelcome`). The commit (and the new GroupInfo) go
   * through the transport; the conversation is stored only on "success" (same semantics as
   * `addClientsToConversation`). Returns the conversation id and the commit sent. Errors:
   * `InvalidGroupInfo` (with `details.rule`: signature, tree, missing `external_pub`, another
   * cipher suite than the credential's, …), `CredentialRejected`, `ConversationAlreadyExists`,
   * `CredentialNotFound`, and the transport's errors — and then nothing is stored.
   */
  joinByExternalCommit(groupInfo: Uint8Array, credentialRef: CredentialRef): Promise<ExternalCommitJoin> {
    return this.run((scope) => conv.joinByExternalCommit(scope, groupInfo, credentialRef));
  }

  /** Encrypt an application message (MLSMessage-framed PrivateMessage). */
  encryptMessage(conversationId: ConversationId, plaintext: Uint8Array): Promise<Uint8Array> {
    return this.run((scope) => conv.encryptMessage(scope, conversationId, plaintext));
  }

  /**
   * Decrypt an application message, or process and merge a commit / store a proposal. Leaves
   * a commit or proposal brings in are validated and authenticated. Errors: `InvalidMessage`,
   * `InvalidCommit`, `CredentialRejected` (each with `details.rule`) — and then the
   * conversation is unchanged.
   */
  decryptMessage(conversationId: ConversationId, message: Uint8Array): Promise<DecryptedMessage> {
    return this.run((scope) => conv.decryptMessage(scope, conversationId, message));
  }

  // ── X.509: PKI environment and identities (docs/x509.md) ──────────────────────

  /**
   * Add trust anchors (CA certificates, PEM with one or more blocks, or DER) to the session's PKI
   * environment; persisted with the transaction. `InvalidCertificate` (`x509_parse`,
   * `x509_not_ca`). Unlike CoreCrypto 10 (one anchor, replaced), anchors accumulate.
   */
  addTrustAnchor(certificate: PemOrDer | readonly PemOrDer[]): Promise<PkiEntry[]> {
    return this.run(async ({ store }) => stagePkiEntries(store, "anchor", certificate));
  }

  /** Add intermediate CA certificates (used to build paths when a chain omits them). */
  addIntermediate(certificate: PemOrDer | readonly PemOrDer[]): Promise<PkiEntry[]> {
    return this.run(async ({ store }) => stagePkiEntries(store, "intermediate", certificate));
  }

  /** Add certificate revocation lists (RFC 5280 §5; PEM or DER). */
  addCrl(crl: PemOrDer | readonly PemOrDer[]): Promise<PkiEntry[]> {
    return this.run(async ({ store }) => stagePkiEntries(store, "crl", crl));
  }

  /** The PKI environment's entries (of one kind when given). */
  getPkiEntries(kind?: PkiEntryKind): Promise<PkiEntry[]> {
    return this.run(({ store }) => listPkiEntries(store, kind));
  }

  /** Remove a PKI entry by its id (`PkiEntry.id`); false when absent. */
  removePkiEntry(id: string): Promise<boolean> {
    return this.run(({ store }) => removePkiEntry(store, id));
  }

  /**
   * CoreCrypto's `getDeviceIdentities`: the identities of the listed members (leaf order), with
   * the status of their certificate now. `InvalidArgument` for an empty list.
   */
  getDeviceIdentities(conversationId: ConversationId, clientIds: ClientId[]): Promise<MemberIdentity[]> {
    return this.run((scope) => ids.getDeviceIdentities(scope, conversationId, clientIds));
  }

  /** CoreCrypto's `getUserIdentities`: identities of every device of each user (uuid). */
  getUserIdentities(
    conversationId: ConversationId,
    userIds: string[],
  ): Promise<Map<string, MemberIdentity[]>> {
    return this.run((scope) => ids.getUserIdentities(scope, conversationId, userIds));
  }

  /** CoreCrypto's `e2eiConversationState`: Verified, NotVerified or NotEnabled. */
  conversationCredentialState(conversationId: ConversationId): Promise<E2eiConversationState> {
    return this.run((scope) => ids.conversationCredentialState(scope, conversationId));
  }

  /** Alias of `conversationCredentialState`, under CoreCrypto's name. */
  e2eiConversationState(conversationId: ConversationId): Promise<E2eiConversationState> {
    return this.conversationCredentialState(conversationId);
  }
}

// ── helpers (shared with other modules through TxScope) ─────────────────────────

function refHex(ref: KeypackageRef | Uint8Array): string {
  return ref instanceof Uint8Array ? toHex(ref) : ref.hex();
}

export function credentialRefOfRow(row: CredentialRow): CredentialRef {
  return new CredentialRef(
    new ClientId(row.clientId),
    row.ciphersuite as Ciphersuite,
    row.credentialType as CredentialType,
    row.publicKey,
  );
}

/** The stored credential row behind a ref, or `CredentialNotFound`. */
export async function loadCredential(scope: TxScope, ref: CredentialRef): Promise<CredentialRow> {
  if (!(ref instanceof CredentialRef)) {
    throw new MlsKeypackagesError(ErrorCode.InvalidCredentialRef, "expected a CredentialRef");
  }
  const row = await scope.store.get("credentials", ref.id);
  if (row === undefined || row.ciphersuite !== ref.ciphersuite()) {
    throw new MlsKeypackagesError(
      ErrorCode.CredentialNotFound,
      `no such credential in this database: ${ref.toString()}`,
    );
  }
  return row;
}

export function deleteKeypackageRows(store: StagedKeystore, row: KeypackageRow): void {
  store.delete("keypackages", row.ref);
  store.delete("hpke_private_keys", row.initKey);
  store.delete("encryption_keypairs", row.encryptionKey);
}

async function removeKeypackagesOf(scope: TxScope, credentialId: string): Promise<void> {
  const refs = await scope.store.keypackageRefsForCredential(credentialId);
  for (const ref of refs) {
    const row = await scope.store.get("keypackages", ref);
    if (row !== undefined) deleteKeypackageRows(scope.store, row);
  }
}

interface PreparedGeneration extends BuildKeyPackageInput {
  ciphersuite: Ciphersuite;
  credentialId: string;
  credentialType: number;
}

async function prepareGeneration(
  scope: TxScope,
  credentialRef: CredentialRef,
  lifetime: number,
  options: GenerateKeypackageOptions,
): Promise<PreparedGeneration> {
  checkLifetime(lifetime);
  const cred = await loadCredential(scope, credentialRef);
  // X.509: capped at the certificate's notAfter, refused outside its validity (src/pki/lifetime.ts).
  const { notBefore, notAfter } = capLifetimeToCertificate(
    cred.credential,
    lifetimeSeconds(scope.now(), lifetime),
    scope.now(),
  );
  return {
    ciphersuite: assertCiphersuite(cred.ciphersuite),
    credential: cred.credential,
    signaturePublicKey: cred.publicKey,
    signaturePrivateKey: cred.signaturePrivateKey,
    notBefore,
    notAfter,
    lastResort: options.lastResort === true,
    credentialId: cred.id,
    credentialType: cred.credentialType,
  };
}

/** Stage the three rows of a new key package (RFC 9420 §10: package, init key, leaf encryption key). */
function stageKeypackage(scope: TxScope, input: PreparedGeneration, built: BuiltKeyPackage): Keypackage {
  const ref = toHex(built.ref);
  const initKey = toHex(built.initPublicKey);
  const encryptionKey = toHex(built.encryptionPublicKey);
  scope.store.write("keypackages", ref, {
    ref,
    credentialId: input.credentialId,
    ciphersuite: input.ciphersuite,
    credentialType: input.credentialType,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    lastResort: input.lastResort,
    keypackage: built.bytes,
    initKey,
    encryptionKey,
  });
  scope.store.write("hpke_private_keys", initKey, {
    publicKey: built.initPublicKey,
    privateKey: built.initPrivateKey,
  });
  scope.store.write("encryption_keypairs", encryptionKey, {
    publicKey: built.encryptionPublicKey,
    privateKey: built.encryptionPrivateKey,
  });
  // The metadata is known, so decoding is deferred until a caller needs a decoded field.
  const kpRef = new KeypackageRef({
    hashRef: built.ref,
    ciphersuite: input.ciphersuite,
    credentialType: input.credentialType as CredentialType,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    lastResort: input.lastResort,
    clock: scope.now,
  });
  return Keypackage.fromGenerated(built.bytes, kpRef, scope.now);
}

async function generateOne(
  scope: TxScope,
  credentialRef: CredentialRef,
  lifetime: number,
  options: GenerateKeypackageOptions,
): Promise<Keypackage> {
  const input = await prepareGeneration(scope, credentialRef, lifetime, options);
  return stageKeypackage(scope, input, await buildKeypackage(input));
}
