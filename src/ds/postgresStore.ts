/**
 * PostgreSQL Delivery Service store (Node.js, `pg`). Several DS processes may share
 * one database: a claim takes each package with `DELETE … WHERE id IN (SELECT …
 * FOR UPDATE SKIP LOCKED) RETURNING`, so no package is handed out twice. Uploads,
 * replaces and deletes of one client hold a row lock on its `ds_clients` row, and a
 * partial unique index keeps at most one last-resort package per client and suite.
 *
 * The schema is partition-ready: every key package key, index and lookup starts with the
 * user id, so `ds_keypackages` may be hash-partitioned by `user_id` (`partitions` option).
 */
import { createHash } from "node:crypto";
import pg from "pg";
import {
  DEFAULT_PURGE_BATCH,
  DEFAULT_PURGE_PAUSE_MS,
  DS_SCHEMA_VERSION,
  changedKeySuites,
  checkOneLastResortPerSuite,
  checkRotationPackages,
  clientFromRow,
  decodeSignatureKeys,
  decodeClaimAnswer,
  encodeClaimAnswer,
  encodeSignatureKeys,
  sameKey,
  sleep,
  type DsClientRow,
  type DsEventBus,
  type DsListOptions,
  type DsStoreEvent,
  type DsStoredKeypackageRow,
  type RotateSignatureKeyStoreOptions,
  type RotateSignatureKeyStoreResult,
  type AddKeypackagesOptions,
  type AddKeypackagesResult,
  type ClaimedDsKeypackage,
  type DeliveryServiceStore,
  type DsClaimOptions,
  type DsClaimResult,
  type DsClient,
  type DsClientKey,
  type DsPoolSize,
  type DsPurgeOptions,
  type DsPurgeResult,
  type NewDsClient,
  type NewDsKeypackage,
  REMAINING_CAP,
} from "./store.js";

const SCHEMA_LOCK = 0x6d6c736b; // "mlsk": serializes schema creation across processes
/** Advisory lock namespace for idempotent claims of one user (`pg_advisory_xact_lock(ns, hashtext(user))`). */
const CLAIM_LOCK_NS = 0x6d6c6363; // "mlcc"

/** Version 2, fresh: `ds_meta`, `ds_clients`, `ds_keypackages` (maybe hash-partitioned by user). */
function createTablesSql(partitions: number): string {
  const parts = Array.from(
    { length: partitions },
    (_, i) =>
      `CREATE TABLE ds_keypackages_p${i} PARTITION OF ds_keypackages FOR VALUES WITH (MODULUS ${partitions}, REMAINDER ${i});`,
  ).join("\n");
  return `
CREATE TABLE IF NOT EXISTS ds_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE ds_clients (
  client_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  token_hash BYTEA NOT NULL UNIQUE,
  signature_keys TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  CONSTRAINT ds_clients_user_client UNIQUE (user_id, client_id)
);
CREATE TABLE ds_keypackages (
  id BIGSERIAL NOT NULL,
  user_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  ref BYTEA NOT NULL,
  ciphersuite INTEGER NOT NULL,
  last_resort BOOLEAN NOT NULL,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  key_package BYTEA NOT NULL,
  CONSTRAINT ds_keypackages_pkey PRIMARY KEY (user_id, id),
  CONSTRAINT ds_keypackages_user_ref UNIQUE (user_id, ref),
  CONSTRAINT ds_keypackages_client_fkey FOREIGN KEY (user_id, client_id) REFERENCES ds_clients (user_id, client_id)
)${partitions > 0 ? " PARTITION BY HASH (user_id)" : ""};
${parts}
`;
}

/** Version 1 (before issue #12) → 2, on the existing tables (rewrites the key package indexes). */
const MIGRATE_1_TO_2 = `
CREATE TABLE IF NOT EXISTS ds_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
ALTER TABLE ds_clients ADD CONSTRAINT ds_clients_user_client UNIQUE (user_id, client_id);
DROP INDEX IF EXISTS ds_clients_user;
DELETE FROM ds_keypackages k USING ds_keypackages n
  WHERE k.last_resort AND n.last_resort AND n.client_id = k.client_id AND n.ciphersuite = k.ciphersuite AND n.id > k.id;
ALTER TABLE ds_keypackages
  DROP CONSTRAINT IF EXISTS ds_keypackages_pkey,
  DROP CONSTRAINT IF EXISTS ds_keypackages_ref_key,
  DROP CONSTRAINT IF EXISTS ds_keypackages_client_id_fkey,
  ADD CONSTRAINT ds_keypackages_pkey PRIMARY KEY (user_id, id),
  ADD CONSTRAINT ds_keypackages_user_ref UNIQUE (user_id, ref),
  ADD CONSTRAINT ds_keypackages_client_fkey FOREIGN KEY (user_id, client_id) REFERENCES ds_clients (user_id, client_id);
DROP INDEX IF EXISTS ds_keypackages_pick;
`;

/** Everything else of version 2 (idempotent; completes both a fresh and a migrated schema). */
const SCHEMA_REST = `
CREATE INDEX IF NOT EXISTS ds_keypackages_pick
  ON ds_keypackages (user_id, client_id, ciphersuite, last_resort, not_after, id);
CREATE UNIQUE INDEX IF NOT EXISTS ds_keypackages_one_last_resort
  ON ds_keypackages (user_id, client_id, ciphersuite) WHERE last_resort;
CREATE INDEX IF NOT EXISTS ds_keypackages_user_expiry ON ds_keypackages (user_id, not_after);
CREATE INDEX IF NOT EXISTS ds_keypackages_expiry ON ds_keypackages (not_after);
CREATE TABLE IF NOT EXISTS ds_seen_init_keys (
  hash BYTEA PRIMARY KEY,
  not_after BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ds_seen_init_keys_expiry ON ds_seen_init_keys (not_after);
CREATE TABLE IF NOT EXISTS ds_pool_counts (
  ciphersuite INTEGER NOT NULL,
  last_resort BOOLEAN NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (ciphersuite, last_resort)
) WITH (fillfactor = 50);
CREATE TABLE IF NOT EXISTS ds_pool_deltas (
  ciphersuite INTEGER NOT NULL,
  last_resort BOOLEAN NOT NULL,
  delta BIGINT NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 1000);
CREATE OR REPLACE FUNCTION ds_pool_count_insert() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO ds_pool_deltas (ciphersuite, last_resort, delta)
    SELECT ciphersuite, last_resort, count(*) FROM new_rows GROUP BY ciphersuite, last_resort;
  RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ds_pool_count_delete() RETURNS trigger LANGUAGE plpgsql
  SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO ds_pool_deltas (ciphersuite, last_resort, delta)
    SELECT ciphersuite, last_resort, -count(*) FROM old_rows GROUP BY ciphersuite, last_resort;
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ds_keypackages_count_insert ON ds_keypackages;
CREATE TRIGGER ds_keypackages_count_insert AFTER INSERT ON ds_keypackages
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ds_pool_count_insert();
DROP TRIGGER IF EXISTS ds_keypackages_count_delete ON ds_keypackages;
CREATE TRIGGER ds_keypackages_count_delete AFTER DELETE ON ds_keypackages
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ds_pool_count_delete();
CREATE TABLE IF NOT EXISTS ds_claim_keys (
  claimer_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  user_id TEXT NOT NULL,
  ciphersuite INTEGER NOT NULL,
  expires_at BIGINT NOT NULL,
  response TEXT,
  PRIMARY KEY (claimer_id, idem_key)
);
CREATE INDEX IF NOT EXISTS ds_claim_keys_expiry ON ds_claim_keys (expires_at);
CREATE TABLE IF NOT EXISTS ds_claim_counts (
  user_id TEXT NOT NULL,
  claimer_id TEXT NOT NULL,
  window_end BIGINT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (user_id, claimer_id)
) WITH (fillfactor = 70);
CREATE INDEX IF NOT EXISTS ds_claim_counts_expiry ON ds_claim_counts (window_end);
DELETE FROM ds_pool_deltas;
DELETE FROM ds_pool_counts;
INSERT INTO ds_pool_counts (ciphersuite, last_resort, n)
  SELECT ciphersuite, last_resort, count(*) FROM ds_keypackages GROUP BY ciphersuite, last_resort;
`;

/**
 * Per-table autovacuum (storage parameters; on a partitioned table they go on each partition).
 * The defaults (vacuum at 20 % dead rows) leave a day's purge slice of dead index entries that
 * claim planning walks until VACUUM; these vacuum after ~1 % instead.
 */
const AUTOVACUUM_CHURN =
  "autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05";
const AUTOVACUUM_SMALL = "autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 500";

/**
 * Regular packages: one per client of the user, skipping rows other claimers hold.
 * Exported for bench/ds-scale.ts (EXPLAIN of the claim), not part of the API.
 */
export const CLAIM_SQL = `
WITH cl AS (
  SELECT client_id FROM ds_clients WHERE user_id = $1 AND client_id <> $2
),
purged AS (
  DELETE FROM ds_keypackages WHERE user_id = $1 AND id IN (
    SELECT id FROM ds_keypackages WHERE user_id = $1 AND not_after <= $4 FOR UPDATE SKIP LOCKED)
  RETURNING 1
),
taken AS (
  DELETE FROM ds_keypackages k WHERE k.user_id = $1 AND k.id IN (
    SELECT p.id FROM cl CROSS JOIN LATERAL (
      SELECT x.id FROM ds_keypackages x
      WHERE x.user_id = $1 AND x.client_id = cl.client_id AND x.ciphersuite = $3 AND NOT x.last_resort
        AND x.not_before <= $4 AND x.not_after > $4
      ORDER BY x.not_after, x.id LIMIT 1 FOR UPDATE SKIP LOCKED) p)
  RETURNING k.client_id, k.ref, k.key_package
)
SELECT cl.client_id, t.ref, t.key_package, (SELECT count(*)::int FROM purged) AS purged,
  (SELECT count(*)::int FROM (SELECT 1 FROM ds_keypackages v
   WHERE v.user_id = $1 AND v.client_id = cl.client_id AND v.ciphersuite = $3 AND NOT v.last_resort
     AND v.not_before <= $4 AND v.not_after > $4 LIMIT ${REMAINING_CAP + 1}) c) AS valid_before
FROM cl LEFT JOIN taken t ON t.client_id = cl.client_id
ORDER BY cl.client_id`;

/** Regular packages of one client and suite valid at $4 (after a second-chance claim). */
const REMAINING_SQL = `
SELECT count(*)::int AS n FROM (SELECT 1 FROM ds_keypackages
WHERE user_id = $1 AND client_id = $2 AND ciphersuite = $3 AND NOT last_resort AND not_before <= $4 AND not_after > $4
LIMIT ${REMAINING_CAP}) c`;

/**
 * Second chance for one client that SKIP LOCKED found empty: wait for rows other
 * claimers hold (rows they delete meanwhile are skipped), so the last-resort package
 * is handed out only when no regular one is left.
 */
const CLAIM_ONE_BLOCKING_SQL = `
DELETE FROM ds_keypackages WHERE user_id = $1 AND id = (
  SELECT id FROM ds_keypackages
  WHERE user_id = $1 AND client_id = $2 AND ciphersuite = $3 AND NOT last_resort
    AND not_before <= $4 AND not_after > $4
  ORDER BY not_after, id LIMIT 1 FOR UPDATE)
RETURNING ref, key_package`;

const LAST_RESORT_SQL = `
SELECT DISTINCT ON (client_id) client_id, ref, key_package FROM ds_keypackages
WHERE user_id = $1 AND client_id = ANY($2::text[]) AND ciphersuite = $3 AND last_resort
  AND not_before <= $4 AND not_after > $4
ORDER BY client_id, id DESC`;

/** Count one claim of ($1 user) by ($2 claimer) in its fixed window; no row when the user is unknown. */
const CLAIM_COUNT_SQL = `
INSERT INTO ds_claim_counts AS c (user_id, claimer_id, window_end, n)
  SELECT $1, $2, $3::bigint + $4::bigint, 1 WHERE EXISTS (SELECT 1 FROM ds_clients WHERE user_id = $1)
ON CONFLICT (user_id, claimer_id) DO UPDATE SET
  n = CASE WHEN c.window_end <= $3 THEN 1 ELSE c.n + 1 END,
  window_end = CASE WHEN c.window_end <= $3 THEN excluded.window_end ELSE c.window_end END
RETURNING n, window_end`;

/** Fold the counter deltas the triggers append into `ds_pool_counts` (cost: writes since the last fold). */
const FOLD_COUNTS_SQL = `
WITH d AS (DELETE FROM ds_pool_deltas RETURNING ciphersuite, last_resort, delta),
s AS (SELECT ciphersuite, last_resort, sum(delta)::bigint AS n FROM d GROUP BY ciphersuite, last_resort)
INSERT INTO ds_pool_counts AS c (ciphersuite, last_resort, n) SELECT ciphersuite, last_resort, n FROM s
ON CONFLICT (ciphersuite, last_resort) DO UPDATE SET n = c.n + excluded.n`;

export interface PostgresDsStoreOptions {
  /** Schema for the tables (created if missing); default: the connection's search_path. */
  schema?: string;
  /** Connection pool size (default 10). */
  poolSize?: number;
  /**
   * Create `ds_keypackages` hash-partitioned by `user_id` into this many partitions (default 0:
   * not partitioned). Only when the table is created; an existing table is kept as it is.
   */
  partitions?: number;
}

type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

/**
 * The LISTEN side of the event bus: one dedicated connection per process and channel, shared by
 * every store of the process on that database and schema; reconnects after an error (events
 * published meanwhile are lost: they are hints, the pool also syncs on a timer).
 */
class NotifyListener {
  static readonly #shared = new Map<string, NotifyListener>();
  readonly #handlers = new Set<(payload: string) => void>();
  #client: pg.Client | undefined;
  #timer: NodeJS.Timeout | undefined;
  #delayMs = 250;
  #closed = false;
  #ready: Promise<void>;
  #resolveReady: () => void = () => undefined;
  /** Connections made (the first one and every reconnect). */
  connects = 0;

  private constructor(
    readonly key: string,
    readonly url: string,
    readonly channel: string,
  ) {
    this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
    this.#connect();
  }

  static acquire(url: string, channel: string): NotifyListener {
    const key = `${channel} ${url}`;
    let l = NotifyListener.#shared.get(key);
    if (l === undefined) {
      l = new NotifyListener(key, url, channel);
      NotifyListener.#shared.set(key, l);
    }
    return l;
  }

  /** Resolves once LISTEN is active (or at once when closed). */
  ready(): Promise<void> {
    return this.#ready;
  }

  add(handler: (payload: string) => void): void {
    this.#handlers.add(handler);
  }

  /** Drop a handler; the last one closes the connection. */
  async remove(handler: (payload: string) => void): Promise<void> {
    this.#handlers.delete(handler);
    if (this.#handlers.size > 0) return;
    this.#closed = true;
    NotifyListener.#shared.delete(this.key);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#resolveReady();
    const c = this.#client;
    this.#client = undefined;
    await c?.end().catch(() => undefined);
  }

  #connect(): void {
    if (this.#closed) return;
    const c = new pg.Client({
      connectionString: this.url,
      application_name: `mlskp-ds-listen ${this.channel}`,
    });
    this.#client = c;
    this.connects++;
    const lost = (): void => {
      if (this.#client !== c) return;
      this.#client = undefined;
      c.end().catch(() => undefined);
      if (this.#closed) return;
      this.#ready = new Promise((resolve) => (this.#resolveReady = resolve));
      this.#timer = setTimeout(() => this.#connect(), this.#delayMs);
      this.#timer.unref();
      this.#delayMs = Math.min(this.#delayMs * 2, 5_000);
    };
    c.on("error", lost);
    c.on("end", lost);
    c.on("notification", (m) => {
      if (m.channel !== this.channel || m.payload === undefined) return;
      for (const h of [...this.#handlers]) h(m.payload);
    });
    c.connect()
      .then(() => c.query(`LISTEN ${this.channel}`))
      .then(() => {
        if (this.#client !== c) return;
        this.#delayMs = 250;
        this.#resolveReady();
      }, lost);
  }
}

/** The NOTIFY channel of a schema (channels are database-wide; schemas must not hear each other). */
function eventChannel(schema: string | undefined): string {
  if (schema === undefined) return "mlskp_ds_events";
  return `mlskp_ds_${createHash("sha256").update(schema).digest("hex").slice(0, 16)}`;
}

function isStoreEvent(v: unknown): v is DsStoreEvent {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    (e.kind === "claimed" || e.kind === "rotated") &&
    typeof e.clientId === "string" &&
    typeof e.ciphersuite === "number"
  );
}

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b);
const hex = (u: Uint8Array): string => buf(u).toString("hex");

/** Thrown inside `#tx` to roll back and still answer `value`. */
class Rollback<T> {
  constructor(readonly value: T) {}
}

/** Deadlock or serialization failure: the transaction may simply be run again. */
const retryable = (err: unknown): boolean => {
  const code = (err as { code?: string }).code;
  return code === "40P01" || code === "40001";
};

export class PostgresDsStore implements DeliveryServiceStore {
  readonly kind = "postgres" as const;
  readonly #pool: pg.Pool;
  readonly #schema: string | undefined;
  readonly #partitions: number;
  readonly #url: string;
  #closed = false;

  /** `url`: `postgres://user@host:port/db`. */
  constructor(url: string, options: PostgresDsStoreOptions = {}) {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new TypeError(`invalid PostgreSQL schema name: ${JSON.stringify(schema)}`);
    }
    const partitions = options.partitions ?? 0;
    if (!Number.isInteger(partitions) || partitions < 0 || partitions > 1024) {
      throw new TypeError("partitions must be an integer in [0, 1024]");
    }
    this.#schema = schema;
    this.#partitions = partitions;
    this.#url = url;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      // A request waits at most this long for a connection (PostgreSQL down → 503, not a hang).
      connectionTimeoutMillis: 5_000,
      ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle connection dropped by the server must not crash the process.
    this.#pool.on("error", () => undefined);
    // Nor one dropped while checked out (between two queries of a transaction): the query in
    // flight rejects, and that request answers 503; without a listener the process would die.
    this.#pool.on("connect", (client) => {
      client.on("error", () => undefined);
    });
  }

  /** Run `fn` in one transaction on one connection; run it again on a deadlock (up to 3 times). */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.#pool.connect();
      // A connection that failed is closed, not handed back to the pool (it may be broken).
      let failed = false;
      try {
        await c.query("BEGIN");
        const r = await fn(c);
        await c.query("COMMIT");
        return r;
      } catch (err) {
        if (err instanceof Rollback) {
          await c.query("ROLLBACK").catch(() => undefined);
          return err.value as T;
        }
        failed = true;
        await c.query("ROLLBACK").catch(() => undefined);
        if (attempt < 3 && retryable(err)) continue;
        throw err;
      } finally {
        c.release(failed);
      }
    }
  }

  async init(): Promise<void> {
    await this.#tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
      if (this.#schema !== undefined) await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
      const reg = await c.query<{ kp: string | null; meta: string | null }>(
        "SELECT to_regclass('ds_keypackages')::text AS kp, to_regclass('ds_meta')::text AS meta",
      );
      let version = 0;
      if (reg.rows[0]?.meta != null) {
        const v = await c.query<{ value: string }>("SELECT value FROM ds_meta WHERE key = 'schema_version'");
        if (v.rows[0] !== undefined) version = Number(v.rows[0].value);
      }
      if (version === 0 && reg.rows[0]?.kp != null) version = 1;
      if (version > DS_SCHEMA_VERSION)
        throw new Error(
          `the DS database has schema version ${version}; this build knows ${DS_SCHEMA_VERSION}`,
        );
      if (version === DS_SCHEMA_VERSION) return;
      await c.query(version === 1 ? MIGRATE_1_TO_2 : createTablesSql(this.#partitions));
      await c.query(SCHEMA_REST);
      // Storage parameters live on the leaf tables of a partitioned table.
      const leaves = await c.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c
         WHERE c.oid IN (SELECT relid FROM pg_partition_tree('ds_keypackages'::regclass) WHERE isleaf)`,
      );
      for (const { name } of leaves.rows) await c.query(`ALTER TABLE ${name} SET (${AUTOVACUUM_CHURN})`);
      await c.query(`ALTER TABLE ds_seen_init_keys SET (${AUTOVACUUM_CHURN})`);
      await c.query(`ALTER TABLE ds_claim_keys SET (${AUTOVACUUM_SMALL})`);
      await c.query(`ALTER TABLE ds_claim_counts SET (${AUTOVACUUM_SMALL})`);
      await c.query(
        `INSERT INTO ds_meta (key, value) VALUES ('schema_version', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [String(DS_SCHEMA_VERSION)],
      );
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#pool.end();
  }

  async ping(): Promise<void> {
    await this.#pool.query("SELECT 1");
  }

  async createClient(c: NewDsClient): Promise<boolean> {
    const r = await this.#pool.query(
      `INSERT INTO ds_clients (client_id, user_id, token_hash, signature_keys, created_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (client_id) DO NOTHING`,
      [c.clientId, c.userId, buf(c.tokenHash), encodeSignatureKeys(c.signatureKeys), c.createdAt],
    );
    return r.rowCount === 1;
  }

  async getClient(clientId: string): Promise<DsClient | undefined> {
    const r = await this.#pool.query<DsClientRow>(
      "SELECT client_id, user_id, signature_keys, created_at FROM ds_clients WHERE client_id = $1",
      [clientId],
    );
    return r.rows[0] && clientFromRow(r.rows[0]);
  }

  async clientByTokenHash(tokenHash: Uint8Array): Promise<DsClient | undefined> {
    const r = await this.#pool.query<DsClientRow>(
      "SELECT client_id, user_id, signature_keys, created_at FROM ds_clients WHERE token_hash = $1",
      [buf(tokenHash)],
    );
    return r.rows[0] && clientFromRow(r.rows[0]);
  }

  async seenInitKeys(hashes: readonly Uint8Array[]): Promise<Uint8Array[]> {
    if (hashes.length === 0) return [];
    const r = await this.#pool.query<{ hash: Buffer }>(
      "SELECT hash FROM ds_seen_init_keys WHERE hash = ANY($1::bytea[])",
      [hashes.map(buf)],
    );
    const seen = new Set(r.rows.map((row) => row.hash.toString("hex")));
    return hashes.filter((h) => seen.has(hex(h)));
  }

  /**
   * Lock the client's row until the transaction ends: its uploads, replaces, deletes and key
   * rotations run one at a time. Its registered signature keys, or undefined when unknown.
   */
  async #lockClient(c: pg.PoolClient, key: DsClientKey): Promise<Map<number, Uint8Array> | undefined> {
    const r = await c.query<{ signature_keys: string }>(
      "SELECT signature_keys FROM ds_clients WHERE user_id = $1 AND client_id = $2 FOR NO KEY UPDATE",
      [key.userId, key.clientId],
    );
    const row = r.rows[0];
    return row === undefined ? undefined : decodeSignatureKeys(row.signature_keys);
  }

  /** Record the packages' init keys; a key seen before rolls the transaction back. */
  async #recordInitKeys(c: pg.PoolClient, packages: readonly NewDsKeypackage[]): Promise<void> {
    // Hashes in a fixed order, so two uploads sharing hashes cannot lock each other crosswise.
    const fresh = await c.query<{ hash: Buffer }>(
      `INSERT INTO ds_seen_init_keys (hash, not_after)
       SELECT h, na FROM unnest($1::bytea[], $2::bigint[]) AS u(h, na) ORDER BY h
       ON CONFLICT DO NOTHING RETURNING hash`,
      [packages.map((p) => buf(p.initKeyHash)), packages.map((p) => p.notAfter)],
    );
    if (fresh.rows.length === packages.length) return;
    const inserted = new Set(fresh.rows.map((row) => row.hash.toString("hex")));
    // Within one request a repeated hash is inserted once: report the later copies.
    const reported = new Set<string>();
    const reused = packages
      .map((p) => p.initKeyHash)
      .filter((h) => {
        const k = hex(h);
        if (inserted.has(k)) {
          inserted.delete(k);
          return false;
        }
        if (reported.has(k)) return false;
        reported.add(k);
        return true;
      });
    throw new Rollback<AddKeypackagesResult>({ ok: false, reason: "init_key_reused", initKeyHashes: reused });
  }

  /** Insert the rows, then check the per-client cap (over it rolls back). */
  async #insertRows(
    c: pg.PoolClient,
    key: DsClientKey,
    packages: readonly NewDsKeypackage[],
    maxStored: number | undefined,
  ): Promise<void> {
    if (packages.length > 0)
      await c.query(
        `INSERT INTO ds_keypackages (client_id, user_id, ref, ciphersuite, last_resort, not_before, not_after, key_package)
         SELECT $1, $2, u.* FROM unnest($3::bytea[], $4::int[], $5::bool[], $6::bigint[], $7::bigint[], $8::bytea[]) AS u`,
        [
          key.clientId,
          key.userId,
          packages.map((p) => buf(p.ref)),
          packages.map((p) => p.ciphersuite),
          packages.map((p) => p.lastResort),
          packages.map((p) => p.notBefore),
          packages.map((p) => p.notAfter),
          packages.map((p) => buf(p.keyPackage)),
        ],
      );
    if (maxStored === undefined) return;
    const r = await c.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM ds_keypackages WHERE user_id = $1 AND client_id = $2",
      [key.userId, key.clientId],
    );
    const n = r.rows[0]?.n ?? 0;
    if (n > maxStored)
      throw new Rollback<AddKeypackagesResult>({
        ok: false,
        reason: "pool_full",
        stored: n - packages.length,
      });
  }

  async addKeypackages(
    client: DsClient,
    packages: readonly NewDsKeypackage[],
    options: AddKeypackagesOptions = {},
  ): Promise<AddKeypackagesResult> {
    checkOneLastResortPerSuite(packages);
    const { clientId, userId } = client;
    return this.#tx(async (c): Promise<AddKeypackagesResult> => {
      const registered = await this.#lockClient(c, client);
      if (registered === undefined) throw new Error(`unknown DS client ${clientId}`);
      // The keys the packages were validated against must still be the registered ones.
      const changed = changedKeySuites(client, registered, packages);
      if (changed.length > 0)
        throw new Rollback<AddKeypackagesResult>({
          ok: false,
          reason: "signature_key_changed",
          ciphersuites: changed,
        });
      await this.#recordInitKeys(c, packages);
      // One DELETE for the replaced suites and the superseded last-resort packages.
      const replace = [...new Set(options.replaceSuites ?? [])];
      const lrSuites = [...new Set(packages.filter((p) => p.lastResort).map((p) => p.ciphersuite))];
      let removed = 0;
      if (replace.length > 0 || lrSuites.length > 0) {
        const r = await c.query(
          `DELETE FROM ds_keypackages WHERE user_id = $1 AND client_id = $2
             AND (ciphersuite = ANY($3::int[]) OR (last_resort AND ciphersuite = ANY($4::int[])))`,
          [userId, clientId, replace, lrSuites],
        );
        removed = r.rowCount ?? 0;
      }
      await this.#insertRows(c, client, packages, options.maxStoredPerClient);
      return { ok: true, removed };
    });
  }

  async rotateSignatureKey(
    client: DsClientKey,
    ciphersuite: number,
    oldKey: Uint8Array,
    newKey: Uint8Array,
    packages: readonly NewDsKeypackage[],
    options: RotateSignatureKeyStoreOptions = {},
  ): Promise<RotateSignatureKeyStoreResult> {
    checkRotationPackages(packages, ciphersuite);
    const { clientId, userId } = client;
    return this.#tx(async (c): Promise<RotateSignatureKeyStoreResult> => {
      // Under the client's row lock: no upload of the old key can commit after this check.
      const keys = await this.#lockClient(c, client);
      if (keys === undefined || !sameKey(keys.get(ciphersuite), oldKey))
        return { ok: false, reason: "stale_signature_key" };
      keys.set(ciphersuite, newKey);
      await c.query("UPDATE ds_clients SET signature_keys = $3 WHERE user_id = $1 AND client_id = $2", [
        userId,
        clientId,
        encodeSignatureKeys(keys),
      ]);
      const del = await c.query(
        "DELETE FROM ds_keypackages WHERE user_id = $1 AND client_id = $2 AND ciphersuite = $3",
        [userId, clientId, ciphersuite],
      );
      await this.#recordInitKeys(c, packages);
      await this.#insertRows(c, client, packages, options.maxStoredPerClient);
      return { ok: true, deleted: del.rowCount ?? 0 };
    });
  }

  async listKeypackages(
    client: DsClientKey,
    options: DsListOptions,
  ): Promise<{ keyPackages: DsStoredKeypackageRow[]; more: boolean }> {
    const limit = Math.max(1, Math.floor(options.limit));
    const r = await this.#pool.query<{
      ref: Buffer;
      ciphersuite: number;
      last_resort: boolean;
      not_before: string;
      not_after: string;
    }>(
      `SELECT ref, ciphersuite, last_resort, not_before, not_after FROM ds_keypackages
       WHERE user_id = $1 AND client_id = $2 AND ($3::int IS NULL OR ciphersuite = $3::int) AND ref > $4
       ORDER BY ref LIMIT $5`,
      [
        client.userId,
        client.clientId,
        options.ciphersuite ?? null,
        buf(options.after ?? new Uint8Array(0)),
        limit + 1,
      ],
    );
    return {
      keyPackages: r.rows.slice(0, limit).map((row) => ({
        ref: bytes(row.ref),
        ciphersuite: row.ciphersuite,
        lastResort: row.last_resort,
        notBefore: Number(row.not_before),
        notAfter: Number(row.not_after),
      })),
      more: r.rows.length > limit,
    };
  }

  /** LISTEN/NOTIFY: events reach the servers of every process on this database and schema. */
  eventBus(): DsEventBus {
    const channel = eventChannel(this.#schema);
    const listener = NotifyListener.acquire(this.#url, channel);
    const mine = new Set<(e: DsStoreEvent) => void>();
    const handler = (payload: string): void => {
      let e: unknown;
      try {
        e = JSON.parse(payload);
      } catch {
        return;
      }
      if (!isStoreEvent(e)) return;
      for (const l of [...mine]) {
        try {
          l(e);
        } catch {
          // a listener's failure is its own
        }
      }
    };
    listener.add(handler);
    let closed = false;
    return {
      ready: () => listener.ready(),
      publish: async (events) => {
        if (events.length === 0 || this.#closed) return;
        await this.#pool.query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", [
          channel,
          events.map((e) => JSON.stringify(e)),
        ]);
      },
      subscribe: (l) => {
        mine.add(l);
        return () => mine.delete(l);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        mine.clear();
        await listener.remove(handler);
      },
    };
  }

  /** A bare client id: its key, looked up (undefined when unknown). */
  async #key(client: DsClientKey | string): Promise<DsClientKey | undefined> {
    if (typeof client !== "string") return client;
    const r = await this.#pool.query<{ user_id: string }>(
      "SELECT user_id FROM ds_clients WHERE client_id = $1",
      [client],
    );
    return r.rows[0] && { clientId: client, userId: r.rows[0].user_id };
  }

  async countKeypackages(
    client: DsClientKey | string,
    ciphersuite: number,
    now: number,
  ): Promise<{ regular: number; lastResort: number }> {
    const key = await this.#key(client);
    if (key === undefined) return { regular: 0, lastResort: 0 };
    const r = await this.#pool.query<{ regular: number; last_resort: number }>(
      `SELECT count(*) FILTER (WHERE NOT last_resort)::int AS regular, count(*) FILTER (WHERE last_resort)::int AS last_resort
       FROM ds_keypackages WHERE user_id = $1 AND client_id = $2 AND ciphersuite = $3 AND not_before <= $4 AND not_after > $4`,
      [key.userId, key.clientId, ciphersuite, now],
    );
    return { regular: r.rows[0]?.regular ?? 0, lastResort: r.rows[0]?.last_resort ?? 0 };
  }

  async deleteKeypackages(client: DsClientKey | string, refs: readonly Uint8Array[]): Promise<number> {
    if (refs.length === 0) return 0;
    const key = await this.#key(client);
    if (key === undefined) return 0;
    return this.#tx(async (c) => {
      if ((await this.#lockClient(c, key)) === undefined) return 0;
      const r = await c.query(
        "DELETE FROM ds_keypackages WHERE user_id = $1 AND client_id = $2 AND ref = ANY($3::bytea[])",
        [key.userId, key.clientId, refs.map(buf)],
      );
      return r.rowCount ?? 0;
    });
  }

  async claim(
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
    options: DsClaimOptions = {},
  ): Promise<DsClaimResult | undefined> {
    if (options.idempotency !== undefined) {
      const idem = options.idempotency;
      return this.#tx((c) =>
        this.#claimIdempotent(c, userId, ciphersuite, excludeClientId, now, idem, options),
      );
    }
    if (options.limit !== undefined) {
      const q = await this.#count(this.#pool, userId, excludeClientId, now, options.limit);
      if (q !== "ok") return q;
    }
    return this.#claimOn(this.#pool, userId, ciphersuite, excludeClientId, now);
  }

  /** Count a claim against the per-target limit: "ok", over the limit, or undefined (unknown user). */
  async #count(
    q: Queryable,
    userId: string,
    claimerId: string,
    now: number,
    limit: { max: number; windowSeconds: number },
  ): Promise<"ok" | DsClaimResult | undefined> {
    const r = await q.query<{ n: number; window_end: string }>(CLAIM_COUNT_SQL, [
      userId,
      claimerId,
      now,
      limit.windowSeconds,
    ]);
    const row = r.rows[0];
    if (row === undefined) return undefined;
    if (row.n <= limit.max) return "ok";
    return {
      keyPackages: [],
      exhausted: [],
      purged: 0,
      limited: { retryAfter: Number(row.window_end) - now },
    };
  }

  /**
   * A claim under an idempotency key, in one transaction: the key row is written first (a
   * concurrent retry with the same key waits for this transaction, then reads its answer),
   * the packages are taken, and the answer is stored before COMMIT, so a claim that commits
   * always has its answer stored. Idempotent claims of one user take an advisory lock on the
   * user, so their blocking second chances never wait on each other crosswise.
   */
  async #claimIdempotent(
    c: pg.PoolClient,
    userId: string,
    ciphersuite: number,
    claimerId: string,
    now: number,
    idem: { key: string; windowSeconds: number },
    options: DsClaimOptions,
  ): Promise<DsClaimResult | undefined> {
    await c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [CLAIM_LOCK_NS, userId]);
    const mine = await c.query(
      `INSERT INTO ds_claim_keys AS k (claimer_id, idem_key, user_id, ciphersuite, expires_at, response)
       VALUES ($1, $2, $3, $4, $5, NULL)
       ON CONFLICT (claimer_id, idem_key) DO UPDATE SET user_id = excluded.user_id,
         ciphersuite = excluded.ciphersuite, expires_at = excluded.expires_at, response = NULL
       WHERE k.expires_at <= $6
       RETURNING 1`,
      [claimerId, idem.key, userId, ciphersuite, now + idem.windowSeconds, now],
    );
    if (mine.rows.length === 0) {
      const r = await c.query<{ user_id: string; ciphersuite: number; response: string | null }>(
        "SELECT user_id, ciphersuite, response FROM ds_claim_keys WHERE claimer_id = $1 AND idem_key = $2",
        [claimerId, idem.key],
      );
      const row = r.rows[0];
      if (row === undefined || row.response === null) throw new Error("idempotency record without an answer");
      if (row.user_id !== userId || row.ciphersuite !== ciphersuite)
        return { keyPackages: [], exhausted: [], purged: 0, keyMismatch: true };
      return { ...decodeClaimAnswer(row.response), purged: 0, replayed: true };
    }
    // Nothing taken (unknown user, over the limit): leave no key behind; the count stays, as
    // without a key.
    const forget = async (v: DsClaimResult | undefined): Promise<DsClaimResult | undefined> => {
      await c.query("DELETE FROM ds_claim_keys WHERE claimer_id = $1 AND idem_key = $2", [
        claimerId,
        idem.key,
      ]);
      return v;
    };
    if (options.limit !== undefined) {
      const q = await this.#count(c, userId, claimerId, now, options.limit);
      if (q !== "ok") return forget(q);
    }
    const r = await this.#claimOn(c, userId, ciphersuite, claimerId, now);
    if (r === undefined) return forget(undefined);
    await c.query("UPDATE ds_claim_keys SET response = $3 WHERE claimer_id = $1 AND idem_key = $2", [
      claimerId,
      idem.key,
      encodeClaimAnswer(r),
    ]);
    return r;
  }

  async #claimOn(
    q: Queryable,
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
  ): Promise<DsClaimResult | undefined> {
    const r = await q.query<{
      client_id: string;
      ref: Buffer | null;
      key_package: Buffer | null;
      purged: number;
      valid_before: number;
    }>(CLAIM_SQL, [userId, excludeClientId, ciphersuite, now]);
    if (r.rows.length === 0) {
      const known = await q.query("SELECT 1 FROM ds_clients WHERE user_id = $1 LIMIT 1", [userId]);
      return known.rows.length === 0 ? undefined : { keyPackages: [], exhausted: [], purged: 0 };
    }
    const purged = r.rows[0]?.purged ?? 0;
    const got = new Map<string, ClaimedDsKeypackage>();
    const missing: string[] = [];
    for (const row of r.rows) {
      if (row.ref !== null && row.key_package !== null) {
        got.set(row.client_id, {
          clientId: row.client_id,
          ref: bytes(row.ref),
          keyPackage: bytes(row.key_package),
          lastResort: false,
          // the statement's snapshot still counts the package it took
          remaining: Math.max(0, row.valid_before - 1),
        });
      } else {
        missing.push(row.client_id);
      }
    }
    const noRegular: string[] = [];
    for (const clientId of missing) {
      const one = await q.query<{ ref: Buffer; key_package: Buffer }>(CLAIM_ONE_BLOCKING_SQL, [
        userId,
        clientId,
        ciphersuite,
        now,
      ]);
      const row = one.rows[0];
      if (row !== undefined) {
        const left = await q.query<{ n: number }>(REMAINING_SQL, [userId, clientId, ciphersuite, now]);
        got.set(clientId, {
          clientId,
          ref: bytes(row.ref),
          keyPackage: bytes(row.key_package),
          lastResort: false,
          remaining: left.rows[0]?.n ?? 0,
        });
      } else noRegular.push(clientId);
    }
    const exhausted: string[] = [];
    if (noRegular.length > 0) {
      const lr = await q.query<{ client_id: string; ref: Buffer; key_package: Buffer }>(LAST_RESORT_SQL, [
        userId,
        noRegular,
        ciphersuite,
        now,
      ]);
      for (const row of lr.rows) {
        got.set(row.client_id, {
          clientId: row.client_id,
          ref: bytes(row.ref),
          keyPackage: bytes(row.key_package),
          lastResort: true,
          remaining: 0,
        });
      }
      for (const clientId of noRegular) if (!got.has(clientId)) exhausted.push(clientId);
    }
    const keyPackages = r.rows
      .map((row) => got.get(row.client_id))
      .filter((k): k is ClaimedDsKeypackage => k !== undefined);
    return { keyPackages, exhausted, purged };
  }

  async poolSizes(_now?: number): Promise<DsPoolSize[]> {
    await this.#pool.query(FOLD_COUNTS_SQL);
    const r = await this.#pool.query<{ ciphersuite: number; last_resort: boolean; n: string }>(
      "SELECT ciphersuite, last_resort, n FROM ds_pool_counts WHERE n > 0 ORDER BY ciphersuite, last_resort",
    );
    return r.rows.map((row) => ({
      ciphersuite: row.ciphersuite,
      lastResort: row.last_resort,
      count: Number(row.n),
    }));
  }

  async purgeExpired(now: number, options: DsPurgeOptions = {}): Promise<DsPurgeResult> {
    const batch = Math.max(1, Math.floor(options.batchSize ?? DEFAULT_PURGE_BATCH));
    const pause = Math.max(0, options.pauseMs ?? DEFAULT_PURGE_PAUSE_MS);
    const drain = async (sql: string): Promise<number> => {
      let total = 0;
      for (;;) {
        if (this.#closed) return total;
        const r = await this.#pool.query(sql, [now, batch]);
        const n = r.rowCount ?? 0;
        total += n;
        if (n < batch) return total;
        await sleep(pause);
      }
    };
    const keypackages = await drain(
      `DELETE FROM ds_keypackages WHERE (user_id, id) IN (
         SELECT user_id, id FROM ds_keypackages WHERE not_after <= $1 ORDER BY not_after LIMIT $2
         FOR UPDATE SKIP LOCKED)`,
    );
    const initKeys = await drain(
      `DELETE FROM ds_seen_init_keys WHERE hash IN (
         SELECT hash FROM ds_seen_init_keys WHERE not_after <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    );
    const claimRecords =
      (await drain(
        `DELETE FROM ds_claim_keys WHERE (claimer_id, idem_key) IN (
           SELECT claimer_id, idem_key FROM ds_claim_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      )) +
      (await drain(
        `DELETE FROM ds_claim_counts WHERE (user_id, claimer_id) IN (
           SELECT user_id, claimer_id FROM ds_claim_counts WHERE window_end <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      ));
    if (!this.#closed) await this.#pool.query(FOLD_COUNTS_SQL);
    return { keypackages, initKeys, claimRecords };
  }
}
