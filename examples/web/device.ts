/**
 * One device of the example page: an encrypted IndexedDB keystore whose key stays wrapped by a
 * non-extractable WebCrypto key, a session on it, a Basic credential, and a registration at the
 * Delivery Service. Every action of the page is a method here; the UI (main.ts) only renders
 * `view()`.
 */
import {
  Ciphersuite,
  ClientId,
  CoreCrypto,
  Credential,
  Database,
  DeliveryServiceClient,
  DeliveryServiceError,
  Keypackage,
  deleteWrappedDatabaseKey,
  loadOrCreateWrappedDatabaseKey,
  type CommitBundle,
  type CredentialRef,
  type KvRow,
} from "../../src/index.js";
import { Mailbox } from "./mailbox.js";

export const SUITE = Ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
export const DAY_MS = 24 * 60 * 60 * 1000;
/** A package is shown as "expiring" when less than this is left of its lifetime. */
export const EXPIRING_WITHIN_MS = 7 * DAY_MS;

export type KeypackageState = "valid" | "expiring" | "expired";

export interface KeypackageView {
  /** Hex KeyPackageRef. */
  ref: string;
  /** Milliseconds since the epoch. */
  notBefore: number;
  notAfter: number;
  lastResort: boolean;
  /** Generated under an older credential (kept locally after a rotation, for Welcomes in flight). */
  previousCredential: boolean;
  state: KeypackageState;
}

export interface HistoryEntry {
  /** Sender's client id. */
  from: string;
  text: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface DeviceView {
  clientId: string;
  /** hex SHA-256 of the current credential's signature key (its id). */
  credentialId: string;
  /** Ids of every credential in the keystore, oldest first. */
  credentials: string[];
  keypackages: KeypackageView[];
  /** Valid packages of the suite on the DS, or the error that prevented counting. */
  ds: { count: number; lastResort: number } | { error: string };
  conversation: { members: string[]; epoch: bigint } | undefined;
  messages: HistoryEntry[];
  inbox: { welcomes: number; messages: number };
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

// This page's own records in the keystore's small key–value table (encrypted like every row).
const KV_TOKEN = "example-web/ds-token";
const KV_CONVERSATION = "example-web/conversation";
const KV_HISTORY = "example-web/history";
const HISTORY_MAX = 100;

export function stateOf(notAfterMs: number, now: number): KeypackageState {
  if (now >= notAfterMs) return "expired";
  return notAfterMs - now < EXPIRING_WITHIN_MS ? "expiring" : "valid";
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

export class Device {
  readonly slot: string;
  readonly cc: CoreCrypto;
  readonly ds: DeliveryServiceClient;
  readonly #mailbox: Mailbox;
  #credential: CredentialRef;
  #conversation: Uint8Array | undefined;
  #history: HistoryEntry[];
  /** Hex ref of the last key package this device claimed for the other one. */
  lastClaimedRef: string | undefined;

  private constructor(
    slot: string,
    cc: CoreCrypto,
    ds: DeliveryServiceClient,
    mailbox: Mailbox,
    credential: CredentialRef,
    conversation: Uint8Array | undefined,
    history: HistoryEntry[],
  ) {
    this.slot = slot;
    this.cc = cc;
    this.ds = ds;
    this.#mailbox = mailbox;
    this.#credential = credential;
    this.#conversation = conversation;
    this.#history = history;
  }

  /** IndexedDB database (and wrapped-key record) name of a slot. */
  static databaseName(slot: string): string {
    return `mlskp-web-${slot}`;
  }

  /**
   * Open the slot's keystore (created with a fresh identity on first use) and make sure the
   * Delivery Service knows this device (registering it again if the DS forgot it).
   */
  static async open(slot: string, dsUrl: string, mailbox: Mailbox): Promise<Device> {
    const name = Device.databaseName(slot);
    const key = await loadOrCreateWrappedDatabaseKey(name);
    const database = await Database.open(name, key);
    const cc = await CoreCrypto.open(database);
    let credentials = await cc.transaction((tx) => tx.findCredentials({ ciphersuite: SUITE }));
    if (credentials.length === 0) {
      const clientId = ClientId.format(crypto.randomUUID(), randomHex(8), "example.com");
      credentials = [await cc.transaction((tx) => tx.addCredential(Credential.basic(SUITE, clientId)))];
    }
    // The newest credential is the current one (a rotation adds a newer one).
    const credential = credentials[credentials.length - 1]!;
    const token = await kvGet(database, KV_TOKEN);
    const ds = new DeliveryServiceClient({
      baseUrl: dsUrl,
      clientId: credential.clientId(),
      ...(token !== undefined ? { token: fromUtf8.decode(token) } : {}),
    });
    const conversation = await kvGet(database, KV_CONVERSATION);
    const history = await kvGet(database, KV_HISTORY);
    const device = new Device(
      slot,
      cc,
      ds,
      mailbox,
      credential,
      conversation,
      history === undefined ? [] : (JSON.parse(fromUtf8.decode(history)) as HistoryEntry[]),
    );
    await device.#ensureRegistered(token === undefined);
    return device;
  }

  get clientId(): string {
    return this.#credential.clientId().toString();
  }

  get userId(): string {
    return this.#credential.clientId().userId();
  }

  get credential(): CredentialRef {
    return this.#credential;
  }

  async #ensureRegistered(fresh: boolean): Promise<void> {
    if (!fresh) {
      try {
        await this.ds.count(SUITE);
        return;
      } catch (e) {
        // 401: the DS does not know the token (e.g. `npm run web` restarted its in-memory store).
        if (!(e instanceof DeliveryServiceError && e.status === 401)) throw e;
      }
    }
    const token = await this.ds.register({
      clientId: this.#credential.clientId(),
      signatureKeys: { [SUITE]: this.#credential.publicKey() },
    });
    await kvPut(this.cc.database, KV_TOKEN, utf8.encode(token));
  }

  /** Everything the page shows about this device. */
  async view(): Promise<DeviceView> {
    const now = this.cc.now().getTime();
    const conversationId = this.#conversation;
    const local = await this.cc.transaction(async (tx) => {
      const refs = await tx.getKeypackageRefs();
      const credentials = await tx.findCredentials();
      const conversation =
        conversationId !== undefined && (await tx.conversationExists(conversationId))
          ? {
              members: (await tx.getClientIds(conversationId)).map(String),
              epoch: await tx.conversationEpoch(conversationId),
            }
          : undefined;
      return { refs, credentials: credentials.map((c) => c.id), conversation };
    });
    // Which credential each package belongs to: the keystore's package metadata (no decryption
    // of package bytes, no parsing).
    const credentialOf = new Map(
      (await this.cc.database.keystore.listKeypackageMeta()).map((m) => [m.ref, m.credentialId]),
    );
    const keypackages = local.refs
      .map((r): KeypackageView => {
        const lt = r.lifetime();
        const notBefore = lt?.notBefore.getTime() ?? 0;
        const notAfter = lt?.notAfter.getTime() ?? 0;
        return {
          ref: r.hex(),
          notBefore,
          notAfter,
          lastResort: r.isLastResort(),
          previousCredential: (credentialOf.get(r.hex()) ?? this.#credential.id) !== this.#credential.id,
          state: stateOf(notAfter, now),
        };
      })
      .sort((a, b) => a.notAfter - b.notAfter || a.ref.localeCompare(b.ref));
    let ds: DeviceView["ds"];
    try {
      ds = await this.ds.count(SUITE);
    } catch (e) {
      ds = { error: e instanceof Error ? e.message : String(e) };
    }
    const inbox = this.#mailbox.peek(this.clientId);
    return {
      clientId: this.clientId,
      credentialId: this.#credential.id,
      credentials: local.credentials,
      keypackages,
      ds,
      conversation: local.conversation,
      messages: [...this.#history],
      inbox: {
        welcomes: inbox.filter((m) => m.kind === "welcome").length,
        messages: inbox.filter((m) => m.kind === "message").length,
      },
    };
  }

  /** Generate `count` key packages of `lifetimeMs` in one transaction, then upload them. */
  async generateAndUpload(count: number, lifetimeMs: number): Promise<string> {
    const credential = this.#credential;
    const kps = await this.cc.transaction((tx) => tx.generateKeypackages(credential, count, lifetimeMs));
    const r = await this.ds.upload(kps);
    return `generated ${kps.length} key package(s) and uploaded ${r.refs.length}`;
  }

  /**
   * Claim one of `peer`'s key packages at the DS and add that device to this device's
   * conversation (created on first use). The Welcome goes to the peer's inbox.
   */
  async claimAndAdd(peerUserId: string): Promise<string> {
    const claim = await this.ds.claim(peerUserId, SUITE);
    const claimed = claim.keyPackages[0];
    if (claimed === undefined)
      return "the other device has no key package on the DS: generate and upload first";
    this.lastClaimedRef = claimed.ref;
    const conversationId = this.#conversation ?? utf8.encode(`conversation-${randomHex(8)}`);
    const credential = this.#credential;
    const bundles: CommitBundle[] = [];
    this.cc.provideTransport({
      // A real application posts the bundle to its message server; we keep it until the
      // transaction has committed, then deliver through the page's mailbox.
      sendCommitBundle: async (bundle) => {
        bundles.push(bundle);
        return "success";
      },
    });
    const before = await this.cc.transaction(async (tx) => {
      const exists = await tx.conversationExists(conversationId);
      if (!exists) await tx.createConversation(conversationId, credential);
      const members = exists ? (await tx.getClientIds(conversationId)).map(String) : [];
      await tx.addClientsToConversation(conversationId, [Keypackage.deserialize(claimed.keyPackage)]);
      return members;
    });
    if (this.#conversation === undefined) {
      this.#conversation = conversationId;
      await kvPut(this.cc.database, KV_CONVERSATION, conversationId);
    }
    for (const bundle of bundles) {
      if (bundle.welcome !== undefined)
        this.#mailbox.post(claimed.clientId, "welcome", this.clientId, bundle.welcome);
      for (const member of before)
        if (member !== this.clientId) this.#mailbox.post(member, "message", this.clientId, bundle.commit);
    }
    return `claimed ${claimed.ref.slice(0, 8)}… and added the other device: its Welcome is on the way`;
  }

  /** Process everything in this device's inbox, oldest first. */
  async processInbox(): Promise<string> {
    const done: string[] = [];
    for (let mail = this.#mailbox.peek(this.clientId)[0]; mail !== undefined;) {
      const bytes = Mailbox.bytes(mail);
      try {
        if (mail.kind === "welcome") {
          const id = await this.cc.transaction((tx) => tx.processWelcomeMessage(bytes));
          this.#conversation = id;
          await kvPut(this.cc.database, KV_CONVERSATION, id);
          done.push("joined the conversation (the Welcome consumed one key package)");
        } else if (this.#conversation !== undefined) {
          const conversationId = this.#conversation;
          const m = await this.cc.transaction((tx) => tx.decryptMessage(conversationId, bytes));
          if (m.kind === "application" && m.message !== undefined) {
            await this.#remember({ from: mail.from, text: fromUtf8.decode(m.message), at: mail.at });
            done.push("decrypted a message");
          } else done.push(`processed a ${m.kind}`);
        }
      } finally {
        // A message that fails now would fail again: drop it either way (the error is shown).
        this.#mailbox.shift(this.clientId);
      }
      mail = this.#mailbox.peek(this.clientId)[0];
    }
    return done.length === 0 ? "nothing to process" : done.join("; ");
  }

  /** Encrypt `text` for the conversation and post it to every other member. */
  async send(text: string): Promise<string> {
    const conversationId = this.#conversation;
    if (conversationId === undefined) return "no conversation yet";
    const { ciphertext, members } = await this.cc.transaction(async (tx) => ({
      ciphertext: await tx.encryptMessage(conversationId, utf8.encode(text)),
      members: (await tx.getClientIds(conversationId)).map(String),
    }));
    for (const m of members)
      if (m !== this.clientId) this.#mailbox.post(m, "message", this.clientId, ciphertext);
    await this.#remember({ from: this.clientId, text, at: Date.now() });
    return `sent ${ciphertext.length} encrypted bytes`;
  }

  /** Remove expired key packages here (with their private keys) and at the DS. */
  async prune(): Promise<string> {
    const removed = await this.cc.transaction(async (tx) => {
      const expired = (await tx.getKeypackageRefs()).filter((r) => !r.isValid());
      for (const r of expired) await tx.removeKeypackage(r);
      return expired.map((r) => r.hex());
    });
    // The DS stops handing out expired packages by itself and purges them; tidy up anyway.
    const deleted = removed.length > 0 ? await this.ds.delete(removed) : 0;
    return `pruned ${removed.length} expired key package(s) (${deleted} still listed at the DS)`;
  }

  /**
   * Rotate the credential: a new signature key for the same client id. The key package pool
   * generates packages under it and has the DS swap the registered key and every package of the
   * suite at once (with a proof of possession of the new key); the old packages stay usable
   * locally for the grace period, in case a Welcome to one of them is on its way.
   */
  async rotateCredential(): Promise<string> {
    const old = this.#credential;
    const fresh = await this.cc.transaction((tx) =>
      tx.addCredential(Credential.basic(SUITE, old.clientId())),
    );
    const valid = (await this.cc.transaction((tx) => tx.getKeypackageRefs())).filter(
      (r) => r.isValid() && !r.isLastResort(),
    ).length;
    const pool = this.cc.keypackagePool({
      ds: this.ds,
      credential: old,
      target: Math.min(Math.max(valid, 5), 100),
      lastResort: false,
    });
    const report = await pool.rotateCredential(fresh);
    this.#credential = fresh;
    return `now signing with ${fresh.id.slice(0, 8)}…; ${report.generated} key package(s) under it replace the old ones at the DS`;
  }

  async #remember(entry: HistoryEntry): Promise<void> {
    this.#history = [...this.#history, entry].slice(-HISTORY_MAX);
    await kvPut(this.cc.database, KV_HISTORY, utf8.encode(JSON.stringify(this.#history)));
  }

  async close(): Promise<void> {
    await this.cc.close();
  }

  /** Delete a slot's keystore and its wrapped key (the page's "Reset"). */
  static async destroy(slot: string): Promise<void> {
    const name = Device.databaseName(slot);
    await deleteWrappedDatabaseKey(name);
    await new Promise<void>((resolve, reject) => {
      const r = indexedDB.deleteDatabase(name);
      r.onsuccess = () => resolve();
      r.onerror = () => reject(r.error);
      r.onblocked = () => resolve();
    });
  }
}

/** A value of the keystore's key–value table. */
async function kvGet(database: Database, key: string): Promise<Uint8Array | undefined> {
  return (await database.keystore.get("kv", key))?.value;
}

/**
 * Write a value of the keystore's key–value table: one atomic, encrypted commit of its own. Only
 * this page writes these keys, so it needs no session transaction around it.
 */
async function kvPut(database: Database, key: string, value: Uint8Array): Promise<void> {
  const row: KvRow = { key, value };
  await database.keystore.commit([{ kind: "put", table: "kv", key, row }]);
}
