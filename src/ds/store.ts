/**
 * The Delivery Service storage contract. Implemented by `SqliteDsStore` (default)
 * and `PostgresDsStore`; both pass test/ds/store.contract.ts.
 *
 * Times are Unix seconds (as in the MLS lifetime extension). A package is *valid*
 * at `now` when `notBefore ≤ now < notAfter`.
 */

/** A registered client. Only its signature keys change (`rotateSignatureKey`). */
export interface DsClient {
  clientId: string;
  userId: string;
  /** Cipher suite → signature public key. */
  signatureKeys: ReadonlyMap<number, Uint8Array>;
  createdAt: number;
}

export interface NewDsClient extends DsClient {
  /** SHA-256 of the bearer token (the token itself is never stored). */
  tokenHash: Uint8Array;
}

/** A validated key package ready to be stored. */
export interface NewDsKeypackage {
  /** KeyPackageRef bytes. */
  ref: Uint8Array;
  ciphersuite: number;
  lastResort: boolean;
  notBefore: number;
  notAfter: number;
  /** SHA-256 of the HPKE init key (replay table key). */
  initKeyHash: Uint8Array;
  keyPackage: Uint8Array;
}

export interface AddKeypackagesOptions {
  /** Replace (PUT): first delete every package of these suites of the client, in the same transaction. */
  replaceSuites?: readonly number[];
  /** Refuse when the client would then hold more packages than this. */
  maxStoredPerClient?: number;
}

export type AddKeypackagesResult =
  | { ok: true; removed: number }
  /** Some init keys were seen before (this request is rolled back whole). */
  | { ok: false; reason: "init_key_reused"; initKeyHashes: Uint8Array[] }
  | { ok: false; reason: "pool_full"; stored: number }
  /**
   * The registered signature key of these suites is no longer the one in `client` (a rotation
   * committed since the packages were validated): nothing stored.
   */
  | { ok: false; reason: "signature_key_changed"; ciphersuites: number[] };

export interface RotateSignatureKeyStoreOptions {
  /** Refuse when the client would then hold more packages than this. */
  maxStoredPerClient?: number;
}

export type RotateSignatureKeyStoreResult =
  /** `deleted`: packages of the suite removed (every one bound to the old key). */
  | { ok: true; deleted: number }
  /** The registered key of the suite is not `oldKey` (or the client is gone): nothing changed. */
  | { ok: false; reason: "stale_signature_key" }
  | { ok: false; reason: "init_key_reused"; initKeyHashes: Uint8Array[] }
  | { ok: false; reason: "pool_full"; stored: number };

/** One of a client's stored packages, as listed for reconciliation. */
export interface DsStoredKeypackageRow {
  ref: Uint8Array;
  ciphersuite: number;
  lastResort: boolean;
  notBefore: number;
  notAfter: number;
}

export interface DsListOptions {
  /** Only this suite (default: every suite). */
  ciphersuite?: number;
  /** Page size. */
  limit: number;
  /** Keyset pagination: only refs greater than this one (bytewise). */
  after?: Uint8Array;
}

export interface ClaimedDsKeypackage {
  clientId: string;
  ref: Uint8Array;
  keyPackage: Uint8Array;
  lastResort: boolean;
  /**
   * Regular packages of this client and suite left valid at `now` after this claim (for pool
   * events; under concurrent claims it may be a little high). Counted up to `REMAINING_CAP`, so a
   * claim's work does not grow with the size of the client's pool.
   */
  remaining?: number;
}

/** `remaining` is counted up to this many packages (and `lowWater` of an event stream is at most this). */
export const REMAINING_CAP = 1000;

export interface DsPoolSize {
  ciphersuite: number;
  lastResort: boolean;
  count: number;
}

/** What identifies a client's rows: every key package lookup carries the user id (partition key). */
export type DsClientKey = Pick<DsClient, "clientId" | "userId">;

export interface DsClaimOptions {
  /**
   * At most `max` claims by this claimer of this target user per fixed window of `windowSeconds`,
   * counted in the database (so across processes). Every attempt counts, refused ones too (a
   * replay under an idempotency key does not). Over the limit the claim takes nothing and the
   * result carries `limited`.
   */
  limit?: { max: number; windowSeconds: number };
  /**
   * Idempotency: the first claim with this key (per claimer) stores its answer in the same
   * transaction that takes the packages; a retry with the key within `windowSeconds` gets that
   * answer again (`replayed`) instead of new packages. A key reused for another user or suite
   * gives `keyMismatch`.
   */
  idempotency?: { key: string; windowSeconds: number };
}

export interface DsClaimResult {
  keyPackages: ClaimedDsKeypackage[];
  exhausted: string[];
  /** Expired packages of the user deleted on the way. */
  purged: number;
  /** The stored answer of an earlier claim with the same idempotency key. */
  replayed?: true;
  /** The idempotency key was first used for another user or cipher suite (nothing taken). */
  keyMismatch?: true;
  /** Over the per-target limit (nothing taken): seconds until the window ends. */
  limited?: { retryAfter: number };
}

export interface DsPurgeOptions {
  /** Rows deleted per statement (default 1000). */
  batchSize?: number;
  /** Pause between batches, ms (default 100), so the purge never holds the database long. */
  pauseMs?: number;
}

export interface DsPurgeResult {
  keypackages: number;
  initKeys: number;
  /** Expired idempotency records and claim-limit windows. */
  claimRecords: number;
}

export const DEFAULT_PURGE_BATCH = 1000;
export const DEFAULT_PURGE_PAUSE_MS = 100;
/** The schema version both stores create, and migrate older databases to. */
export const DS_SCHEMA_VERSION = 2;

export interface DeliveryServiceStore {
  readonly kind: "sqlite" | "postgres";
  /**
   * Create the schema if needed, or migrate an older one (see `DS_SCHEMA_VERSION`).
   * Safe to call from several processes at once.
   */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;

  /** False when the client id is already registered (nothing changes then). */
  createClient(client: NewDsClient): Promise<boolean>;
  getClient(clientId: string): Promise<DsClient | undefined>;
  clientByTokenHash(tokenHash: Uint8Array): Promise<DsClient | undefined>;

  /** Which of these init key hashes were seen before (for error reports; `addKeypackages` re-checks atomically). */
  seenInitKeys(hashes: readonly Uint8Array[]): Promise<Uint8Array[]>;
  /**
   * Store packages for a client, all or nothing, recording their init keys as seen.
   * A new last-resort package supersedes the client's previous one of that suite (at most one
   * last-resort package per client and suite, enforced by a unique index). Uploads, replaces
   * and deletes of one client are serialized, also across processes.
   */
  addKeypackages(
    client: DsClient,
    packages: readonly NewDsKeypackage[],
    options?: AddKeypackagesOptions,
  ): Promise<AddKeypackagesResult>;
  /**
   * Packages of a suite valid at `now` (`notBefore ≤ now < notAfter`; `now` may be in the future
   * to count what will still be valid then). A bare client id works too, at the cost of a lookup
   * of its user id.
   */
  countKeypackages(
    client: DsClientKey | string,
    ciphersuite: number,
    now: number,
  ): Promise<{ regular: number; lastResort: number }>;
  /**
   * One page of a client's stored packages (expired ones too, until purged), ordered by ref;
   * `more` when another page follows (keyset pagination: pass the last ref as `after`).
   */
  listKeypackages(
    client: DsClientKey,
    options: DsListOptions,
  ): Promise<{ keyPackages: DsStoredKeypackageRow[]; more: boolean }>;
  /**
   * Replace the signature key of a suite, in one transaction serialized with the client's
   * uploads, replaces and deletes (also across processes): check the registered key is still
   * `oldKey`, set `newKey`, delete every package of the suite (they are bound to the old key),
   * and store `packages` (validated against `newKey`) like `addKeypackages`. All or nothing.
   */
  rotateSignatureKey(
    client: DsClientKey,
    ciphersuite: number,
    oldKey: Uint8Array,
    newKey: Uint8Array,
    packages: readonly NewDsKeypackage[],
    options?: RotateSignatureKeyStoreOptions,
  ): Promise<RotateSignatureKeyStoreResult>;
  /**
   * Where this store's pool events travel: PostgreSQL, LISTEN/NOTIFY (every process on the
   * database); SQLite, this process only. Each call returns a handle to close.
   */
  eventBus?(): DsEventBus;
  /** Delete a client's packages by ref; returns how many existed. */
  deleteKeypackages(client: DsClientKey | string, refs: readonly Uint8Array[]): Promise<number>;
  /**
   * One package of `ciphersuite` for every client of `userId` except `excludeClientId` (the
   * claimer). A regular package is deleted in the same atomic step it is chosen in (never handed
   * out twice, also across processes); a client without one gets its last-resort package (kept).
   * Undefined when the user has no registered client.
   */
  claim(
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
    options?: DsClaimOptions,
  ): Promise<DsClaimResult | undefined>;
  /**
   * Packages stored, by suite and kind, from counters the writes maintain (no table scan):
   * expired packages count until purged, not-yet-valid ones count too.
   */
  poolSizes(now?: number): Promise<DsPoolSize[]>;
  /**
   * Delete expired packages, replay-table entries whose package would be expired anyway, and
   * expired idempotency records and claim-limit windows, in bounded batches with pauses.
   */
  purgeExpired(now: number, options?: DsPurgeOptions): Promise<DsPurgeResult>;
}

/** A fact about a client's pool, published by the server to the client's event subscribers. */
export type DsStoreEvent =
  | {
      kind: "claimed";
      clientId: string;
      ciphersuite: number;
      /** Hex ref. */
      ref: string;
      lastResort: boolean;
      remaining: number;
    }
  | { kind: "rotated"; clientId: string; ciphersuite: number; deleted: number };

export interface DsEventBus {
  /** Deliver to the listeners of every server sharing the store (best effort: events are hints). */
  publish(events: readonly DsStoreEvent[]): Promise<void>;
  /** Listen to every published event; returns the function that stops listening. */
  subscribe(listener: (event: DsStoreEvent) => void): () => void;
  /** Resolves once events of other processes are heard (PostgreSQL: LISTEN is active). */
  ready?(): Promise<void>;
  close(): Promise<void>;
}

/** Events within one process (SQLite; tests). */
export class LocalEventBus implements DsEventBus {
  readonly #listeners = new Set<(event: DsStoreEvent) => void>();

  async publish(events: readonly DsStoreEvent[]): Promise<void> {
    for (const e of events)
      for (const l of [...this.#listeners]) {
        try {
          l(e);
        } catch {
          // a listener's failure is its own
        }
      }
  }

  subscribe(listener: (event: DsStoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}

/** The bytes of `a` and `b` are equal (signature keys). */
export function sameKey(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Suites of `packages` whose registered key (`registered`) is not the one in `client`. */
export function changedKeySuites(
  client: DsClient,
  registered: ReadonlyMap<number, Uint8Array>,
  packages: readonly NewDsKeypackage[],
): number[] {
  const suites = [...new Set(packages.map((p) => p.ciphersuite))];
  return suites.filter((s) => {
    const a = client.signatureKeys.get(s);
    const b = registered.get(s);
    return a === undefined || b === undefined ? a !== b : !sameKey(a, b);
  });
}

/** The answer stored under an idempotency key (JSON; binary fields base64). */
export function encodeClaimAnswer(r: Pick<DsClaimResult, "keyPackages" | "exhausted">): string {
  return JSON.stringify({
    keyPackages: r.keyPackages.map((k) => ({
      clientId: k.clientId,
      ref: Buffer.from(k.ref).toString("base64"),
      keyPackage: Buffer.from(k.keyPackage).toString("base64"),
      lastResort: k.lastResort,
      ...(k.remaining !== undefined ? { remaining: k.remaining } : {}),
    })),
    exhausted: r.exhausted,
  });
}

export function decodeClaimAnswer(text: string): Pick<DsClaimResult, "keyPackages" | "exhausted"> {
  const o = JSON.parse(text) as {
    keyPackages: {
      clientId: string;
      ref: string;
      keyPackage: string;
      lastResort: boolean;
      remaining?: number;
    }[];
    exhausted: string[];
  };
  return {
    keyPackages: o.keyPackages.map((k) => ({
      clientId: k.clientId,
      ref: new Uint8Array(Buffer.from(k.ref, "base64")),
      keyPackage: new Uint8Array(Buffer.from(k.keyPackage, "base64")),
      lastResort: k.lastResort,
      ...(k.remaining !== undefined ? { remaining: k.remaining } : {}),
    })),
    exhausted: o.exhausted,
  };
}

/** Refuse two last-resort packages of one suite in one call (the server rejects them earlier). */
export function checkOneLastResortPerSuite(packages: readonly NewDsKeypackage[]): void {
  const suites = packages.filter((p) => p.lastResort).map((p) => p.ciphersuite);
  if (new Set(suites).size !== suites.length)
    throw new TypeError("at most one last-resort package per cipher suite in one call");
}

/** A rotation's packages: one cipher suite (the rotated one), at most one last-resort package. */
export function checkRotationPackages(packages: readonly NewDsKeypackage[], ciphersuite: number): void {
  checkOneLastResortPerSuite(packages);
  if (packages.some((p) => p.ciphersuite !== ciphersuite))
    throw new TypeError("a rotation stores packages of its own cipher suite only");
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Serialize signature keys for a JSON/TEXT column. */
export function encodeSignatureKeys(keys: ReadonlyMap<number, Uint8Array>): string {
  const o: Record<string, string> = {};
  for (const [suite, key] of keys) o[String(suite)] = Buffer.from(key).toString("base64");
  return JSON.stringify(o);
}

export function decodeSignatureKeys(text: string): Map<number, Uint8Array> {
  const o = JSON.parse(text) as Record<string, string>;
  const m = new Map<number, Uint8Array>();
  for (const [suite, key] of Object.entries(o))
    m.set(Number(suite), new Uint8Array(Buffer.from(key, "base64")));
  return m;
}

/** A `clients` row as both SQL stores select it (PostgreSQL returns BIGINT as text). */
export interface DsClientRow {
  client_id: string;
  user_id: string;
  signature_keys: string;
  created_at: number | string;
}

export function clientFromRow(row: DsClientRow): DsClient {
  return {
    clientId: row.client_id,
    userId: row.user_id,
    signatureKeys: decodeSignatureKeys(row.signature_keys),
    createdAt: Number(row.created_at),
  };
}
