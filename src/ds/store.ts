/**
 * The Delivery Service storage contract. Implemented by `SqliteDsStore` (default)
 * and `PostgresDsStore`; both pass test/ds/store.contract.ts.
 *
 * Times are Unix seconds (as in the MLS lifetime extension). A package is *valid*
 * at `now` when `notBefore ≤ now < notAfter`.
 */

/** A registered client. Immutable once created. */
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
  | { ok: false; reason: "pool_full"; stored: number };

export interface ClaimedDsKeypackage {
  clientId: string;
  ref: Uint8Array;
  keyPackage: Uint8Array;
  lastResort: boolean;
}

export interface DsClaimResult {
  keyPackages: ClaimedDsKeypackage[];
  exhausted: string[];
  /** Expired packages of the user deleted on the way. */
  purged: number;
}

export interface DsPoolSize {
  ciphersuite: number;
  lastResort: boolean;
  count: number;
}

export interface DeliveryServiceStore {
  readonly kind: "sqlite" | "postgres";
  /** Create the schema if needed. Safe to call from several processes at once. */
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
   * A new last-resort package supersedes the client's previous one of that suite.
   */
  addKeypackages(
    client: DsClient,
    packages: readonly NewDsKeypackage[],
    options?: AddKeypackagesOptions,
  ): Promise<AddKeypackagesResult>;
  countKeypackages(
    clientId: string,
    ciphersuite: number,
    now: number,
  ): Promise<{ regular: number; lastResort: number }>;
  /** Delete a client's packages by ref; returns how many existed. */
  deleteKeypackages(clientId: string, refs: readonly Uint8Array[]): Promise<number>;
  /**
   * One package of `ciphersuite` for every client of `userId` except `excludeClientId`.
   * A regular package is deleted in the same atomic step it is chosen in (never handed out
   * twice, also across processes); a client without one gets its last-resort package (kept).
   * Undefined when the user has no registered client.
   */
  claim(
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
  ): Promise<DsClaimResult | undefined>;
  /** Valid packages by suite and kind (for metrics). */
  poolSizes(now: number): Promise<DsPoolSize[]>;
  /** Delete expired packages, and replay-table entries whose package would be expired anyway. */
  purgeExpired(now: number): Promise<{ keypackages: number; initKeys: number }>;
}

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
