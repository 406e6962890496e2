/**
 * SQLite Delivery Service store (Node.js): a file in WAL mode, or `:memory:`.
 * Every write is one `BEGIN IMMEDIATE` transaction, so a claim is atomic even when
 * several processes share the file, and writes of one client are serialized.
 */
import BetterSqlite3 from "better-sqlite3-multiple-ciphers";
import { LruCache } from "../mls/crypto/lru.js";
import {
  DEFAULT_PURGE_BATCH,
  DEFAULT_PURGE_PAUSE_MS,
  DS_SCHEMA_VERSION,
  LocalEventBus,
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

type Db = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

/** Schema version 2, idempotent (`IF NOT EXISTS`): also completes a migrated version-1 database. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS ds_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ds_clients (
  client_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  token_hash BLOB NOT NULL UNIQUE,
  signature_keys TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ds_clients_user ON ds_clients(user_id);
CREATE TABLE IF NOT EXISTS ds_keypackages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ref BLOB NOT NULL UNIQUE,
  client_id TEXT NOT NULL REFERENCES ds_clients(client_id),
  user_id TEXT NOT NULL,
  ciphersuite INTEGER NOT NULL,
  last_resort INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  key_package BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ds_keypackages_pick
  ON ds_keypackages(user_id, client_id, ciphersuite, last_resort, not_after);
CREATE UNIQUE INDEX IF NOT EXISTS ds_keypackages_one_last_resort
  ON ds_keypackages(user_id, client_id, ciphersuite) WHERE last_resort = 1;
CREATE INDEX IF NOT EXISTS ds_keypackages_user_expiry ON ds_keypackages(user_id, not_after);
CREATE INDEX IF NOT EXISTS ds_keypackages_expiry ON ds_keypackages(not_after);
CREATE TABLE IF NOT EXISTS ds_seen_init_keys (
  hash BLOB PRIMARY KEY,
  not_after INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ds_seen_init_keys_expiry ON ds_seen_init_keys(not_after);
CREATE TABLE IF NOT EXISTS ds_pool_counts (
  ciphersuite INTEGER NOT NULL,
  last_resort INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (ciphersuite, last_resort)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS ds_keypackages_count_insert AFTER INSERT ON ds_keypackages BEGIN
  INSERT INTO ds_pool_counts (ciphersuite, last_resort, n) VALUES (NEW.ciphersuite, NEW.last_resort, 1)
  ON CONFLICT (ciphersuite, last_resort) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS ds_keypackages_count_delete AFTER DELETE ON ds_keypackages BEGIN
  UPDATE ds_pool_counts SET n = n - 1 WHERE ciphersuite = OLD.ciphersuite AND last_resort = OLD.last_resort;
END;
CREATE TABLE IF NOT EXISTS ds_claim_keys (
  claimer_id TEXT NOT NULL,
  idem_key TEXT NOT NULL,
  user_id TEXT NOT NULL,
  ciphersuite INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  response TEXT NOT NULL,
  PRIMARY KEY (claimer_id, idem_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ds_claim_keys_expiry ON ds_claim_keys(expires_at);
CREATE TABLE IF NOT EXISTS ds_claim_counts (
  user_id TEXT NOT NULL,
  claimer_id TEXT NOT NULL,
  window_end INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (user_id, claimer_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ds_claim_counts_expiry ON ds_claim_counts(window_end);
`;

/** Version 1 (before issue #12) → 2: at most one last-resort package per client and suite, user-first pick index, counters. */
const MIGRATE_1_TO_2_BEFORE = `
DELETE FROM ds_keypackages WHERE last_resort = 1 AND EXISTS (
  SELECT 1 FROM ds_keypackages n WHERE n.last_resort = 1 AND n.client_id = ds_keypackages.client_id
    AND n.ciphersuite = ds_keypackages.ciphersuite AND n.id > ds_keypackages.id);
DROP INDEX IF EXISTS ds_keypackages_pick;
`;

const RECOUNT = `
DELETE FROM ds_pool_counts;
INSERT INTO ds_pool_counts (ciphersuite, last_resort, n)
  SELECT ciphersuite, last_resort, count(*) FROM ds_keypackages GROUP BY ciphersuite, last_resort;
`;

export interface SqliteDsStoreOptions {
  /** Milliseconds to wait for another connection's write lock (default 5000). */
  busyTimeoutMs?: number;
}

interface PickRow {
  id: number;
  ref: Uint8Array;
  key_package: Uint8Array;
}

/** A BLOB as a plain Uint8Array (not a Buffer view). */
const bytes = (v: Uint8Array): Uint8Array => new Uint8Array(v);

class Rollback<T = AddKeypackagesResult> extends Error {
  constructor(readonly result: T) {
    super("rollback");
  }
}

type Failure = Exclude<AddKeypackagesResult, { ok: true }>;

/** In-process event buses, one per database file (`:memory:` stores get their own). */
const buses = new Map<string, { bus: LocalEventBus; refs: number }>();

export class SqliteDsStore implements DeliveryServiceStore {
  readonly kind = "sqlite" as const;
  readonly #db: Db;
  /** Prepared statements by SQL text (better-sqlite3 prepares anew on every `prepare` call). */
  readonly #statements = new LruCache<Statement>(128);
  readonly #path: string;
  #closed = false;

  /** `path`: a file path or `:memory:`. */
  constructor(path: string, options: SqliteDsStoreOptions = {}) {
    this.#path = path === ":memory:" ? `:memory:${Math.random()}` : path;
    this.#db = new BetterSqlite3(path);
    this.#db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    if (path !== ":memory:") this.#db.pragma("journal_mode = WAL");
    // A lost claim deletion could hand a package out twice after power loss: keep FULL.
    this.#db.pragma("synchronous = FULL");
    this.#db.pragma("foreign_keys = ON");
  }

  async init(): Promise<void> {
    const db = this.#db;
    db.transaction(() => {
      const has = (name: string): boolean =>
        db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
      let version = 0;
      if (has("ds_meta")) {
        const row = db.prepare("SELECT value FROM ds_meta WHERE key = 'schema_version'").get() as
          { value: string } | undefined;
        if (row !== undefined) version = Number(row.value);
      }
      if (version === 0 && has("ds_keypackages")) version = 1;
      if (version > DS_SCHEMA_VERSION)
        throw new Error(
          `the DS database has schema version ${version}; this build knows ${DS_SCHEMA_VERSION}`,
        );
      if (version === DS_SCHEMA_VERSION) return;
      if (version === 1) db.exec(MIGRATE_1_TO_2_BEFORE);
      db.exec(SCHEMA);
      if (version === 1) db.exec(RECOUNT);
      db.prepare(
        "INSERT INTO ds_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(String(DS_SCHEMA_VERSION));
    }).immediate();
  }

  #prepare(sql: string): Statement {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#db.open) this.#db.close();
  }

  async ping(): Promise<void> {
    this.#prepare("SELECT 1").get();
  }

  async createClient(c: NewDsClient): Promise<boolean> {
    const r = this.#prepare(
      "INSERT INTO ds_clients (client_id, user_id, token_hash, signature_keys, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(client_id) DO NOTHING",
    ).run(c.clientId, c.userId, c.tokenHash, encodeSignatureKeys(c.signatureKeys), c.createdAt);
    return r.changes === 1;
  }

  async getClient(clientId: string): Promise<DsClient | undefined> {
    const row = this.#prepare(
      "SELECT client_id, user_id, signature_keys, created_at FROM ds_clients WHERE client_id = ?",
    ).get(clientId) as DsClientRow | undefined;
    return row && clientFromRow(row);
  }

  async clientByTokenHash(tokenHash: Uint8Array): Promise<DsClient | undefined> {
    const row = this.#prepare(
      "SELECT client_id, user_id, signature_keys, created_at FROM ds_clients WHERE token_hash = ?",
    ).get(tokenHash) as DsClientRow | undefined;
    return row && clientFromRow(row);
  }

  async seenInitKeys(hashes: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const stmt = this.#prepare("SELECT 1 FROM ds_seen_init_keys WHERE hash = ?");
    return hashes.filter((h) => stmt.get(h) !== undefined);
  }

  async addKeypackages(
    client: DsClient,
    packages: readonly NewDsKeypackage[],
    options: AddKeypackagesOptions = {},
  ): Promise<AddKeypackagesResult> {
    checkOneLastResortPerSuite(packages);
    const db = this.#db;
    const delSuite = this.#prepare(
      "DELETE FROM ds_keypackages WHERE user_id = ? AND client_id = ? AND ciphersuite = ?",
    );
    const { clientId, userId } = client;
    const run = db.transaction((): AddKeypackagesResult => {
      // The keys the packages were validated against must still be the registered ones.
      const row = this.#prepare(
        "SELECT signature_keys FROM ds_clients WHERE user_id = ? AND client_id = ?",
      ).get(userId, clientId) as { signature_keys: string } | undefined;
      if (row === undefined) throw new Error(`unknown DS client ${clientId}`);
      const changed = changedKeySuites(client, decodeSignatureKeys(row.signature_keys), packages);
      if (changed.length > 0)
        throw new Rollback<Failure>({ ok: false, reason: "signature_key_changed", ciphersuites: changed });
      let removed = 0;
      for (const suite of new Set(options.replaceSuites ?? []))
        removed += delSuite.run(userId, clientId, suite).changes;
      removed += this.#insert(client, packages, options.maxStoredPerClient);
      return { ok: true, removed };
    });
    try {
      return run.immediate();
    } catch (err) {
      if (err instanceof Rollback) return err.result as AddKeypackagesResult;
      throw err;
    }
  }

  /**
   * Inside a transaction: record the init keys (a seen one rolls back), supersede last-resort
   * packages, insert, check the cap. Returns the superseded packages.
   */
  #insert(client: DsClientKey, packages: readonly NewDsKeypackage[], maxStored: number | undefined): number {
    const { clientId, userId } = client;
    const seen = this.#prepare(
      "INSERT INTO ds_seen_init_keys (hash, not_after) VALUES (?, ?) ON CONFLICT DO NOTHING",
    );
    const insert = this.#prepare(
      `INSERT INTO ds_keypackages (ref, client_id, user_id, ciphersuite, last_resort, not_before, not_after, key_package)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const delLastResort = this.#prepare(
      "DELETE FROM ds_keypackages WHERE user_id = ? AND client_id = ? AND ciphersuite = ? AND last_resort = 1",
    );
    const reused = packages
      .filter((p) => seen.run(p.initKeyHash, p.notAfter).changes === 0)
      .map((p) => p.initKeyHash);
    if (reused.length > 0)
      throw new Rollback<Failure>({ ok: false, reason: "init_key_reused", initKeyHashes: reused });
    let removed = 0;
    for (const suite of new Set(packages.filter((p) => p.lastResort).map((p) => p.ciphersuite))) {
      removed += delLastResort.run(userId, clientId, suite).changes;
    }
    for (const p of packages) {
      insert.run(
        p.ref,
        clientId,
        userId,
        p.ciphersuite,
        p.lastResort ? 1 : 0,
        p.notBefore,
        p.notAfter,
        p.keyPackage,
      );
    }
    if (maxStored !== undefined) {
      const { n } = this.#prepare(
        "SELECT count(*) AS n FROM ds_keypackages WHERE user_id = ? AND client_id = ?",
      ).get(userId, clientId) as { n: number };
      if (n > maxStored)
        throw new Rollback<Failure>({ ok: false, reason: "pool_full", stored: n - packages.length });
    }
    return removed;
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
    const db = this.#db;
    const { clientId, userId } = client;
    const run = db.transaction((): RotateSignatureKeyStoreResult => {
      const row = this.#prepare(
        "SELECT signature_keys FROM ds_clients WHERE user_id = ? AND client_id = ?",
      ).get(userId, clientId) as { signature_keys: string } | undefined;
      if (row === undefined) return { ok: false, reason: "stale_signature_key" };
      const keys = decodeSignatureKeys(row.signature_keys);
      if (!sameKey(keys.get(ciphersuite), oldKey)) return { ok: false, reason: "stale_signature_key" };
      keys.set(ciphersuite, newKey);
      this.#prepare("UPDATE ds_clients SET signature_keys = ? WHERE client_id = ?").run(
        encodeSignatureKeys(keys),
        clientId,
      );
      const deleted = this.#prepare(
        "DELETE FROM ds_keypackages WHERE user_id = ? AND client_id = ? AND ciphersuite = ?",
      ).run(userId, clientId, ciphersuite).changes;
      this.#insert(client, packages, options.maxStoredPerClient);
      return { ok: true, deleted };
    });
    try {
      return run.immediate();
    } catch (err) {
      if (err instanceof Rollback) return err.result as RotateSignatureKeyStoreResult;
      throw err;
    }
  }

  async listKeypackages(
    client: DsClientKey,
    options: DsListOptions,
  ): Promise<{ keyPackages: DsStoredKeypackageRow[]; more: boolean }> {
    const limit = Math.max(1, Math.floor(options.limit));
    // The pick index narrows to the client (bounded by the per-client cap); then sorted by ref.
    const rows = this.#prepare(
      `SELECT ref, ciphersuite, last_resort AS lr, not_before AS nb, not_after AS na
         FROM ds_keypackages INDEXED BY ds_keypackages_pick
         WHERE user_id = ? AND client_id = ? AND (? IS NULL OR ciphersuite = ?) AND ref > ?
         ORDER BY ref LIMIT ?`,
    ).all(
      client.userId,
      client.clientId,
      options.ciphersuite ?? null,
      options.ciphersuite ?? null,
      options.after ?? new Uint8Array(0),
      limit + 1,
    ) as { ref: Uint8Array; ciphersuite: number; lr: number; nb: number; na: number }[];
    return {
      keyPackages: rows.slice(0, limit).map((r) => ({
        ref: bytes(r.ref),
        ciphersuite: r.ciphersuite,
        lastResort: r.lr === 1,
        notBefore: r.nb,
        notAfter: r.na,
      })),
      more: rows.length > limit,
    };
  }

  eventBus(): DsEventBus {
    let entry = buses.get(this.#path);
    if (entry === undefined) {
      entry = { bus: new LocalEventBus(), refs: 0 };
      buses.set(this.#path, entry);
    }
    entry.refs++;
    const { bus } = entry;
    const mine = new Set<() => void>();
    let closed = false;
    return {
      publish: (events) => bus.publish(events),
      subscribe: (listener) => {
        const off = bus.subscribe(listener);
        mine.add(off);
        return () => {
          mine.delete(off);
          off();
        };
      },
      close: async () => {
        if (closed) return;
        closed = true;
        for (const off of mine) off();
        const e = buses.get(this.#path);
        if (e !== undefined && --e.refs === 0) buses.delete(this.#path);
      },
    };
  }

  /** A bare client id: its key, looked up (undefined when unknown). */
  #key(client: DsClientKey | string): DsClientKey | undefined {
    if (typeof client !== "string") return client;
    const row = this.#prepare("SELECT client_id, user_id FROM ds_clients WHERE client_id = ?").get(client) as
      { client_id: string; user_id: string } | undefined;
    return row && { clientId: row.client_id, userId: row.user_id };
  }

  async countKeypackages(
    client: DsClientKey | string,
    ciphersuite: number,
    now: number,
  ): Promise<{ regular: number; lastResort: number }> {
    const key = this.#key(client);
    if (key === undefined) return { regular: 0, lastResort: 0 };
    const rows = this.#prepare(
      `SELECT last_resort AS lr, count(*) AS n FROM ds_keypackages
         WHERE user_id = ? AND client_id = ? AND ciphersuite = ? AND not_before <= ? AND not_after > ?
         GROUP BY last_resort`,
    ).all(key.userId, key.clientId, ciphersuite, now, now) as { lr: number; n: number }[];
    return {
      regular: rows.find((r) => r.lr === 0)?.n ?? 0,
      lastResort: rows.find((r) => r.lr === 1)?.n ?? 0,
    };
  }

  async deleteKeypackages(client: DsClientKey | string, refs: readonly Uint8Array[]): Promise<number> {
    const key = this.#key(client);
    if (key === undefined) return 0;
    const del = this.#prepare("DELETE FROM ds_keypackages WHERE user_id = ? AND client_id = ? AND ref = ?");
    return this.#db
      .transaction(() => refs.reduce((n, ref) => n + del.run(key.userId, key.clientId, ref).changes, 0))
      .immediate();
  }

  async claim(
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
    options: DsClaimOptions = {},
  ): Promise<DsClaimResult | undefined> {
    const db = this.#db;
    const purge = this.#prepare("DELETE FROM ds_keypackages WHERE user_id = ? AND not_after <= ?");
    const clients = this.#prepare("SELECT client_id FROM ds_clients WHERE user_id = ? ORDER BY client_id");
    const pick = this.#prepare(
      `SELECT id, ref, key_package FROM ds_keypackages
       WHERE user_id = ? AND client_id = ? AND ciphersuite = ? AND last_resort = 0 AND not_before <= ? AND not_after > ?
       ORDER BY not_after, id LIMIT 1`,
    );
    const pickLastResort = this.#prepare(
      `SELECT id, ref, key_package FROM ds_keypackages
       WHERE user_id = ? AND client_id = ? AND ciphersuite = ? AND last_resort = 1 AND not_before <= ? AND not_after > ?
       ORDER BY id DESC LIMIT 1`,
    );
    const del = this.#prepare("DELETE FROM ds_keypackages WHERE id = ?");
    const remaining = this.#prepare(
      `SELECT count(*) AS n FROM (SELECT 1 FROM ds_keypackages
       WHERE user_id = ? AND client_id = ? AND ciphersuite = ? AND last_resort = 0 AND not_before <= ? AND not_after > ?
       LIMIT ${REMAINING_CAP})`,
    );
    const { idempotency, limit } = options;
    const run = db.transaction((): DsClaimResult | undefined => {
      if (idempotency !== undefined) {
        const row = this.#prepare(
          "SELECT user_id, ciphersuite, expires_at, response FROM ds_claim_keys WHERE claimer_id = ? AND idem_key = ?",
        ).get(excludeClientId, idempotency.key) as
          { user_id: string; ciphersuite: number; expires_at: number; response: string } | undefined;
        if (row !== undefined && row.expires_at > now) {
          if (row.user_id !== userId || row.ciphersuite !== ciphersuite)
            return { keyPackages: [], exhausted: [], purged: 0, keyMismatch: true };
          return { ...decodeClaimAnswer(row.response), purged: 0, replayed: true };
        }
      }
      const ids = (clients.all(userId) as { client_id: string }[]).map((r) => r.client_id);
      if (ids.length === 0) return undefined;
      if (limit !== undefined) {
        const q = this.#prepare(
          `INSERT INTO ds_claim_counts (user_id, claimer_id, window_end, n) VALUES (?, ?, ?, 1)
             ON CONFLICT (user_id, claimer_id) DO UPDATE SET
               n = CASE WHEN window_end <= ? THEN 1 ELSE n + 1 END,
               window_end = CASE WHEN window_end <= ? THEN excluded.window_end ELSE window_end END
             RETURNING n, window_end`,
        ).get(userId, excludeClientId, now + limit.windowSeconds, now, now) as {
          n: number;
          window_end: number;
        };
        if (q.n > limit.max)
          return { keyPackages: [], exhausted: [], purged: 0, limited: { retryAfter: q.window_end - now } };
      }
      const purged = purge.run(userId, now).changes;
      const keyPackages: ClaimedDsKeypackage[] = [];
      const exhausted: string[] = [];
      for (const clientId of ids) {
        if (clientId === excludeClientId) continue;
        const regular = pick.get(userId, clientId, ciphersuite, now, now) as PickRow | undefined;
        if (regular !== undefined) {
          del.run(regular.id);
          const left = remaining.get(userId, clientId, ciphersuite, now, now) as { n: number };
          keyPackages.push({
            clientId,
            ref: bytes(regular.ref),
            keyPackage: bytes(regular.key_package),
            lastResort: false,
            remaining: left.n,
          });
          continue;
        }
        const lr = pickLastResort.get(userId, clientId, ciphersuite, now, now) as PickRow | undefined;
        if (lr !== undefined) {
          keyPackages.push({
            clientId,
            ref: bytes(lr.ref),
            keyPackage: bytes(lr.key_package),
            lastResort: true,
            remaining: 0,
          });
        } else {
          exhausted.push(clientId);
        }
      }
      if (idempotency !== undefined) {
        this.#prepare(
          `INSERT INTO ds_claim_keys (claimer_id, idem_key, user_id, ciphersuite, expires_at, response)
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (claimer_id, idem_key) DO UPDATE SET user_id = excluded.user_id,
             ciphersuite = excluded.ciphersuite, expires_at = excluded.expires_at, response = excluded.response`,
        ).run(
          excludeClientId,
          idempotency.key,
          userId,
          ciphersuite,
          now + idempotency.windowSeconds,
          encodeClaimAnswer({ keyPackages, exhausted }),
        );
      }
      return { keyPackages, exhausted, purged };
    });
    return run.immediate();
  }

  async poolSizes(_now?: number): Promise<DsPoolSize[]> {
    const rows = this.#prepare(
      "SELECT ciphersuite, last_resort AS lr, n FROM ds_pool_counts WHERE n > 0 ORDER BY ciphersuite, last_resort",
    ).all() as { ciphersuite: number; lr: number; n: number }[];
    return rows.map((r) => ({ ciphersuite: r.ciphersuite, lastResort: r.lr === 1, count: r.n }));
  }

  async purgeExpired(now: number, options: DsPurgeOptions = {}): Promise<DsPurgeResult> {
    const batch = Math.max(1, Math.floor(options.batchSize ?? DEFAULT_PURGE_BATCH));
    const pause = Math.max(0, options.pauseMs ?? DEFAULT_PURGE_PAUSE_MS);
    const drain = async (sql: string): Promise<number> => {
      let total = 0;
      for (;;) {
        if (this.#closed) return total;
        const stmt = this.#prepare(sql);
        const n = this.#db.transaction(() => stmt.run(now, batch).changes).immediate();
        total += n;
        if (n < batch) return total;
        await sleep(pause);
      }
    };
    const keypackages = await drain(
      "DELETE FROM ds_keypackages WHERE id IN (SELECT id FROM ds_keypackages WHERE not_after <= ? ORDER BY not_after LIMIT ?)",
    );
    const initKeys = await drain(
      "DELETE FROM ds_seen_init_keys WHERE hash IN (SELECT hash FROM ds_seen_init_keys WHERE not_after <= ? LIMIT ?)",
    );
    const claimRecords =
      (await drain(
        `DELETE FROM ds_claim_keys WHERE (claimer_id, idem_key) IN
           (SELECT claimer_id, idem_key FROM ds_claim_keys WHERE expires_at <= ? LIMIT ?)`,
      )) +
      (await drain(
        `DELETE FROM ds_claim_counts WHERE (user_id, claimer_id) IN
           (SELECT user_id, claimer_id FROM ds_claim_counts WHERE window_end <= ? LIMIT ?)`,
      ));
    return { keypackages, initKeys, claimRecords };
  }
}
