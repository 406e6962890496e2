/**
 * SQLite Delivery Service store (Node.js): a file in WAL mode, or `:memory:`.
 * Every write is one `BEGIN IMMEDIATE` transaction, so a claim is atomic even when
 * several processes share the file.
 */
import BetterSqlite3 from "better-sqlite3-multiple-ciphers";
import {
  clientFromRow,
  encodeSignatureKeys,
  type DsClientRow,
  type AddKeypackagesOptions,
  type AddKeypackagesResult,
  type ClaimedDsKeypackage,
  type DeliveryServiceStore,
  type DsClaimResult,
  type DsClient,
  type DsPoolSize,
  type NewDsClient,
  type NewDsKeypackage,
} from "./store.js";

type Db = BetterSqlite3.Database;

const SCHEMA = `
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
CREATE INDEX IF NOT EXISTS ds_keypackages_pick ON ds_keypackages(client_id, ciphersuite, last_resort, not_after);
CREATE INDEX IF NOT EXISTS ds_keypackages_user_expiry ON ds_keypackages(user_id, not_after);
CREATE INDEX IF NOT EXISTS ds_keypackages_expiry ON ds_keypackages(not_after);
CREATE TABLE IF NOT EXISTS ds_seen_init_keys (
  hash BLOB PRIMARY KEY,
  not_after INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ds_seen_init_keys_expiry ON ds_seen_init_keys(not_after);
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

class Rollback extends Error {
  constructor(readonly result: AddKeypackagesResult) {
    super("rollback");
  }
}

export class SqliteDsStore implements DeliveryServiceStore {
  readonly kind = "sqlite" as const;
  readonly #db: Db;

  /** `path`: a file path or `:memory:`. */
  constructor(path: string, options: SqliteDsStoreOptions = {}) {
    this.#db = new BetterSqlite3(path);
    this.#db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    if (path !== ":memory:") this.#db.pragma("journal_mode = WAL");
    // A lost claim deletion could hand a package out twice after power loss: keep FULL.
    this.#db.pragma("synchronous = FULL");
    this.#db.pragma("foreign_keys = ON");
  }

  async init(): Promise<void> {
    this.#db.exec(SCHEMA);
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }

  async ping(): Promise<void> {
    this.#db.prepare("SELECT 1").get();
  }

  async createClient(c: NewDsClient): Promise<boolean> {
    const r = this.#db
      .prepare(
        "INSERT INTO ds_clients (client_id, user_id, token_hash, signature_keys, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(client_id) DO NOTHING",
      )
      .run(c.clientId, c.userId, c.tokenHash, encodeSignatureKeys(c.signatureKeys), c.createdAt);
    return r.changes === 1;
  }

  async getClient(clientId: string): Promise<DsClient | undefined> {
    const row = this.#db
      .prepare("SELECT client_id, user_id, signature_keys, created_at FROM ds_clients WHERE client_id = ?")
      .get(clientId) as DsClientRow | undefined;
    return row && clientFromRow(row);
  }

  async clientByTokenHash(tokenHash: Uint8Array): Promise<DsClient | undefined> {
    const row = this.#db
      .prepare("SELECT client_id, user_id, signature_keys, created_at FROM ds_clients WHERE token_hash = ?")
      .get(tokenHash) as DsClientRow | undefined;
    return row && clientFromRow(row);
  }

  async seenInitKeys(hashes: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const stmt = this.#db.prepare("SELECT 1 FROM ds_seen_init_keys WHERE hash = ?");
    return hashes.filter((h) => stmt.get(h) !== undefined);
  }

  async addKeypackages(
    client: DsClient,
    packages: readonly NewDsKeypackage[],
    options: AddKeypackagesOptions = {},
  ): Promise<AddKeypackagesResult> {
    const db = this.#db;
    const seen = db.prepare(
      "INSERT INTO ds_seen_init_keys (hash, not_after) VALUES (?, ?) ON CONFLICT DO NOTHING",
    );
    const insert = db.prepare(
      `INSERT INTO ds_keypackages (ref, client_id, user_id, ciphersuite, last_resort, not_before, not_after, key_package)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const delSuite = db.prepare("DELETE FROM ds_keypackages WHERE client_id = ? AND ciphersuite = ?");
    const delLastResort = db.prepare(
      "DELETE FROM ds_keypackages WHERE client_id = ? AND ciphersuite = ? AND last_resort = 1",
    );
    const run = db.transaction((): AddKeypackagesResult => {
      let removed = 0;
      for (const suite of new Set(options.replaceSuites ?? []))
        removed += delSuite.run(client.clientId, suite).changes;
      const reused = packages
        .filter((p) => seen.run(p.initKeyHash, p.notAfter).changes === 0)
        .map((p) => p.initKeyHash);
      if (reused.length > 0)
        throw new Rollback({ ok: false, reason: "init_key_reused", initKeyHashes: reused });
      for (const suite of new Set(packages.filter((p) => p.lastResort).map((p) => p.ciphersuite))) {
        removed += delLastResort.run(client.clientId, suite).changes;
      }
      for (const p of packages) {
        insert.run(
          p.ref,
          client.clientId,
          client.userId,
          p.ciphersuite,
          p.lastResort ? 1 : 0,
          p.notBefore,
          p.notAfter,
          p.keyPackage,
        );
      }
      if (options.maxStoredPerClient !== undefined) {
        const { n } = db
          .prepare("SELECT count(*) AS n FROM ds_keypackages WHERE client_id = ?")
          .get(client.clientId) as {
          n: number;
        };
        if (n > options.maxStoredPerClient)
          throw new Rollback({ ok: false, reason: "pool_full", stored: n - packages.length });
      }
      return { ok: true, removed };
    });
    try {
      return run.immediate();
    } catch (err) {
      if (err instanceof Rollback) return err.result;
      throw err;
    }
  }

  async countKeypackages(
    clientId: string,
    ciphersuite: number,
    now: number,
  ): Promise<{ regular: number; lastResort: number }> {
    const rows = this.#db
      .prepare(
        `SELECT last_resort AS lr, count(*) AS n FROM ds_keypackages
         WHERE client_id = ? AND ciphersuite = ? AND not_before <= ? AND not_after > ? GROUP BY last_resort`,
      )
      .all(clientId, ciphersuite, now, now) as { lr: number; n: number }[];
    return {
      regular: rows.find((r) => r.lr === 0)?.n ?? 0,
      lastResort: rows.find((r) => r.lr === 1)?.n ?? 0,
    };
  }

  async deleteKeypackages(clientId: string, refs: readonly Uint8Array[]): Promise<number> {
    const del = this.#db.prepare("DELETE FROM ds_keypackages WHERE client_id = ? AND ref = ?");
    return this.#db
      .transaction(() => refs.reduce((n, ref) => n + del.run(clientId, ref).changes, 0))
      .immediate();
  }

  async claim(
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
  ): Promise<DsClaimResult | undefined> {
    const db = this.#db;
    const purge = db.prepare("DELETE FROM ds_keypackages WHERE user_id = ? AND not_after <= ?");
    const clients = db.prepare("SELECT client_id FROM ds_clients WHERE user_id = ? ORDER BY client_id");
    const pick = db.prepare(
      `SELECT id, ref, key_package FROM ds_keypackages
       WHERE client_id = ? AND ciphersuite = ? AND last_resort = ? AND not_before <= ? AND not_after > ?
       ORDER BY not_after, id LIMIT 1`,
    );
    const pickLastResort = db.prepare(
      `SELECT id, ref, key_package FROM ds_keypackages
       WHERE client_id = ? AND ciphersuite = ? AND last_resort = 1 AND not_before <= ? AND not_after > ?
       ORDER BY id DESC LIMIT 1`,
    );
    const del = db.prepare("DELETE FROM ds_keypackages WHERE id = ?");
    const run = db.transaction((): DsClaimResult | undefined => {
      const ids = (clients.all(userId) as { client_id: string }[]).map((r) => r.client_id);
      if (ids.length === 0) return undefined;
      const purged = purge.run(userId, now).changes;
      const keyPackages: ClaimedDsKeypackage[] = [];
      const exhausted: string[] = [];
      for (const clientId of ids) {
        if (clientId === excludeClientId) continue;
        const regular = pick.get(clientId, ciphersuite, 0, now, now) as PickRow | undefined;
        if (regular !== undefined) {
          del.run(regular.id);
          keyPackages.push({
            clientId,
            ref: bytes(regular.ref),
            keyPackage: bytes(regular.key_package),
            lastResort: false,
          });
          continue;
        }
        const lr = pickLastResort.get(clientId, ciphersuite, now, now) as PickRow | undefined;
        if (lr !== undefined) {
          keyPackages.push({
            clientId,
            ref: bytes(lr.ref),
            keyPackage: bytes(lr.key_package),
            lastResort: true,
          });
        } else {
          exhausted.push(clientId);
        }
      }
      return { keyPackages, exhausted, purged };
    });
    return run.immediate();
  }

  async poolSizes(now: number): Promise<DsPoolSize[]> {
    const rows = this.#db
      .prepare(
        `SELECT ciphersuite, last_resort AS lr, count(*) AS n FROM ds_keypackages
         WHERE not_before <= ? AND not_after > ? GROUP BY ciphersuite, last_resort ORDER BY ciphersuite, last_resort`,
      )
      .all(now, now) as { ciphersuite: number; lr: number; n: number }[];
    return rows.map((r) => ({ ciphersuite: r.ciphersuite, lastResort: r.lr === 1, count: r.n }));
  }

  async purgeExpired(now: number): Promise<{ keypackages: number; initKeys: number }> {
    return this.#db
      .transaction(() => ({
        keypackages: this.#db.prepare("DELETE FROM ds_keypackages WHERE not_after <= ?").run(now).changes,
        initKeys: this.#db.prepare("DELETE FROM ds_seen_init_keys WHERE not_after <= ?").run(now).changes,
      }))
      .immediate();
  }
}
