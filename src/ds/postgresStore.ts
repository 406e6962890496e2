/**
 * PostgreSQL Delivery Service store (Node.js, `pg`). Several DS processes may share
 * one database: a claim takes each package with `DELETE … WHERE id IN (SELECT …
 * FOR UPDATE SKIP LOCKED) RETURNING`, so no package is handed out twice.
 */
import pg from "pg";
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

const SCHEMA_LOCK = 0x6d6c736b; // "mlsk": serializes schema creation across processes

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ds_clients (
  client_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  token_hash BYTEA NOT NULL UNIQUE,
  signature_keys TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ds_clients_user ON ds_clients(user_id);
CREATE TABLE IF NOT EXISTS ds_keypackages (
  id BIGSERIAL PRIMARY KEY,
  ref BYTEA NOT NULL UNIQUE,
  client_id TEXT NOT NULL REFERENCES ds_clients(client_id),
  user_id TEXT NOT NULL,
  ciphersuite INTEGER NOT NULL,
  last_resort BOOLEAN NOT NULL,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  key_package BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS ds_keypackages_pick ON ds_keypackages(client_id, ciphersuite, last_resort, not_after, id);
CREATE INDEX IF NOT EXISTS ds_keypackages_user_expiry ON ds_keypackages(user_id, not_after);
CREATE INDEX IF NOT EXISTS ds_keypackages_expiry ON ds_keypackages(not_after);
CREATE TABLE IF NOT EXISTS ds_seen_init_keys (
  hash BYTEA PRIMARY KEY,
  not_after BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ds_seen_init_keys_expiry ON ds_seen_init_keys(not_after);
`;

/** Regular packages: one per client of the user, skipping rows other claimers hold. */
const CLAIM_SQL = `
WITH cl AS (
  SELECT client_id FROM ds_clients WHERE user_id = $1 AND client_id <> $2
),
purged AS (
  DELETE FROM ds_keypackages WHERE id IN (
    SELECT id FROM ds_keypackages WHERE user_id = $1 AND not_after <= $4 FOR UPDATE SKIP LOCKED)
  RETURNING 1
),
taken AS (
  DELETE FROM ds_keypackages k WHERE k.id IN (
    SELECT p.id FROM cl CROSS JOIN LATERAL (
      SELECT x.id FROM ds_keypackages x
      WHERE x.client_id = cl.client_id AND x.ciphersuite = $3 AND NOT x.last_resort
        AND x.not_before <= $4 AND x.not_after > $4
      ORDER BY x.not_after, x.id LIMIT 1 FOR UPDATE SKIP LOCKED) p)
  RETURNING k.client_id, k.ref, k.key_package
)
SELECT cl.client_id, t.ref, t.key_package, (SELECT count(*)::int FROM purged) AS purged
FROM cl LEFT JOIN taken t ON t.client_id = cl.client_id
ORDER BY cl.client_id`;

/**
 * Second chance for one client that SKIP LOCKED found empty: wait for rows other
 * claimers hold (rows they delete meanwhile are skipped), so the last-resort package
 * is handed out only when no regular one is left.
 */
const CLAIM_ONE_BLOCKING_SQL = `
DELETE FROM ds_keypackages WHERE id = (
  SELECT id FROM ds_keypackages
  WHERE client_id = $1 AND ciphersuite = $2 AND NOT last_resort AND not_before <= $3 AND not_after > $3
  ORDER BY not_after, id LIMIT 1 FOR UPDATE)
RETURNING ref, key_package`;

const LAST_RESORT_SQL = `
SELECT DISTINCT ON (client_id) client_id, ref, key_package FROM ds_keypackages
WHERE client_id = ANY($1::text[]) AND ciphersuite = $2 AND last_resort AND not_before <= $3 AND not_after > $3
ORDER BY client_id, id DESC`;

export interface PostgresDsStoreOptions {
  /** Schema for the tables (created if missing); default: the connection's search_path. */
  schema?: string;
  /** Connection pool size (default 10). */
  poolSize?: number;
}


const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b);
const hex = (u: Uint8Array): string => buf(u).toString("hex");

export class PostgresDsStore implements DeliveryServiceStore {
  readonly kind = "postgres" as const;
  readonly #pool: pg.Pool;
  readonly #schema: string | undefined;

  /** `url`: `postgres://user@host:port/db`. */
  constructor(url: string, options: PostgresDsStoreOptions = {}) {
    const schema = options.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new TypeError(`invalid PostgreSQL schema name: ${JSON.stringify(schema)}`);
    }
    this.#schema = schema;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
    });
    // An idle connection dropped by the server must not crash the process.
    this.#pool.on("error", () => undefined);
  }

  async init(): Promise<void> {
    const c = await this.#pool.connect();
    try {
      await c.query("BEGIN");
      await c.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
      if (this.#schema !== undefined) await c.query(`CREATE SCHEMA IF NOT EXISTS ${this.#schema}`);
      await c.query(SCHEMA);
      await c.query("COMMIT");
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
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

  async addKeypackages(
    client: DsClient,
    packages: readonly NewDsKeypackage[],
    options: AddKeypackagesOptions = {},
  ): Promise<AddKeypackagesResult> {
    const c = await this.#pool.connect();
    try {
      await c.query("BEGIN");
      let removed = 0;
      const replace = [...new Set(options.replaceSuites ?? [])];
      if (replace.length > 0) {
        const r = await c.query(
          "DELETE FROM ds_keypackages WHERE client_id = $1 AND ciphersuite = ANY($2::int[])",
          [client.clientId, replace],
        );
        removed += r.rowCount ?? 0;
      }
      const fresh = await c.query<{ hash: Buffer }>(
        `INSERT INTO ds_seen_init_keys (hash, not_after)
         SELECT * FROM unnest($1::bytea[], $2::bigint[]) ON CONFLICT DO NOTHING RETURNING hash`,
        [packages.map((p) => buf(p.initKeyHash)), packages.map((p) => p.notAfter)],
      );
      if (fresh.rows.length < packages.length) {
        await c.query("ROLLBACK");
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
        return { ok: false, reason: "init_key_reused", initKeyHashes: reused };
      }
      const lrSuites = [...new Set(packages.filter((p) => p.lastResort).map((p) => p.ciphersuite))];
      if (lrSuites.length > 0) {
        const r = await c.query(
          "DELETE FROM ds_keypackages WHERE client_id = $1 AND ciphersuite = ANY($2::int[]) AND last_resort",
          [client.clientId, lrSuites],
        );
        removed += r.rowCount ?? 0;
      }
      await c.query(
        `INSERT INTO ds_keypackages (client_id, user_id, ref, ciphersuite, last_resort, not_before, not_after, key_package)
         SELECT $1, $2, u.* FROM unnest($3::bytea[], $4::int[], $5::bool[], $6::bigint[], $7::bigint[], $8::bytea[]) AS u`,
        [
          client.clientId,
          client.userId,
          packages.map((p) => buf(p.ref)),
          packages.map((p) => p.ciphersuite),
          packages.map((p) => p.lastResort),
          packages.map((p) => p.notBefore),
          packages.map((p) => p.notAfter),
          packages.map((p) => buf(p.keyPackage)),
        ],
      );
      if (options.maxStoredPerClient !== undefined) {
        const r = await c.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM ds_keypackages WHERE client_id = $1",
          [client.clientId],
        );
        const n = r.rows[0]?.n ?? 0;
        if (n > options.maxStoredPerClient) {
          await c.query("ROLLBACK");
          return { ok: false, reason: "pool_full", stored: n - packages.length };
        }
      }
      await c.query("COMMIT");
      return { ok: true, removed };
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async countKeypackages(
    clientId: string,
    ciphersuite: number,
    now: number,
  ): Promise<{ regular: number; lastResort: number }> {
    const r = await this.#pool.query<{ regular: number; last_resort: number }>(
      `SELECT count(*) FILTER (WHERE NOT last_resort)::int AS regular, count(*) FILTER (WHERE last_resort)::int AS last_resort
       FROM ds_keypackages WHERE client_id = $1 AND ciphersuite = $2 AND not_before <= $3 AND not_after > $3`,
      [clientId, ciphersuite, now],
    );
    return { regular: r.rows[0]?.regular ?? 0, lastResort: r.rows[0]?.last_resort ?? 0 };
  }

  async deleteKeypackages(clientId: string, refs: readonly Uint8Array[]): Promise<number> {
    if (refs.length === 0) return 0;
    const r = await this.#pool.query(
      "DELETE FROM ds_keypackages WHERE client_id = $1 AND ref = ANY($2::bytea[])",
      [clientId, refs.map(buf)],
    );
    return r.rowCount ?? 0;
  }

  async claim(
    userId: string,
    ciphersuite: number,
    excludeClientId: string,
    now: number,
  ): Promise<DsClaimResult | undefined> {
    const r = await this.#pool.query<{
      client_id: string;
      ref: Buffer | null;
      key_package: Buffer | null;
      purged: number;
    }>(CLAIM_SQL, [userId, excludeClientId, ciphersuite, now]);
    if (r.rows.length === 0) {
      const known = await this.#pool.query("SELECT 1 FROM ds_clients WHERE user_id = $1 LIMIT 1", [userId]);
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
        });
      } else {
        missing.push(row.client_id);
      }
    }
    const noRegular: string[] = [];
    for (const clientId of missing) {
      const one = await this.#pool.query<{ ref: Buffer; key_package: Buffer }>(CLAIM_ONE_BLOCKING_SQL, [
        clientId,
        ciphersuite,
        now,
      ]);
      const row = one.rows[0];
      if (row !== undefined)
        got.set(clientId, {
          clientId,
          ref: bytes(row.ref),
          keyPackage: bytes(row.key_package),
          lastResort: false,
        });
      else noRegular.push(clientId);
    }
    const exhausted: string[] = [];
    if (noRegular.length > 0) {
      const lr = await this.#pool.query<{ client_id: string; ref: Buffer; key_package: Buffer }>(
        LAST_RESORT_SQL,
        [noRegular, ciphersuite, now],
      );
      for (const row of lr.rows) {
        got.set(row.client_id, {
          clientId: row.client_id,
          ref: bytes(row.ref),
          keyPackage: bytes(row.key_package),
          lastResort: true,
        });
      }
      for (const clientId of noRegular) if (!got.has(clientId)) exhausted.push(clientId);
    }
    const keyPackages = r.rows
      .map((row) => got.get(row.client_id))
      .filter((k): k is ClaimedDsKeypackage => k !== undefined);
    return { keyPackages, exhausted, purged };
  }

  async poolSizes(now: number): Promise<DsPoolSize[]> {
    const r = await this.#pool.query<{ ciphersuite: number; last_resort: boolean; n: number }>(
      `SELECT ciphersuite, last_resort, count(*)::int AS n FROM ds_keypackages
       WHERE not_before <= $1 AND not_after > $1 GROUP BY ciphersuite, last_resort ORDER BY ciphersuite, last_resort`,
      [now],
    );
    return r.rows.map((row) => ({ ciphersuite: row.ciphersuite, lastResort: row.last_resort, count: row.n }));
  }

  async purgeExpired(now: number): Promise<{ keypackages: number; initKeys: number }> {
    const k = await this.#pool.query("DELETE FROM ds_keypackages WHERE not_after <= $1", [now]);
    const s = await this.#pool.query("DELETE FROM ds_seen_init_keys WHERE not_after <= $1", [now]);
    return { keypackages: k.rowCount ?? 0, initKeys: s.rowCount ?? 0 };
  }
}
