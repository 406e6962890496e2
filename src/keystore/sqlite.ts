/**
 * SQLite keystore (Node.js only): one SQLCipher-4-compatible encrypted file in WAL mode,
 * via better-sqlite3-multiple-ciphers. Every `commit()` is one `BEGIN IMMEDIATE` transaction.
 */
import { createHash } from "node:crypto";
import BetterSqlite3 from "better-sqlite3-multiple-ciphers";
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import {
  INSERT_ONLY,
  rowsEqual,
  SCHEMA_VERSION,
  type Keystore,
  type KeypackageMeta,
  type RowCounts,
  type RowOf,
  type StagedOp,
  type TableName,
} from "./contract.js";
import type { DatabaseKey } from "./databaseKey.js";
import { SQLITE_MIGRATIONS } from "./migrations.js";
import { diagnoseSqlcipherFile } from "./sqliteDiagnosis.js";
import { fromHex, toHex } from "./staging.js";

type Db = BetterSqlite3.Database;
type Stmt = BetterSqlite3.Statement<unknown[], unknown>;
type Raw = unknown[];

export interface SqliteOptions {
  /** Milliseconds to wait for another connection's write lock (default 10 000). */
  busyTimeoutMs?: number;
  /** `FULL` (default): a committed transaction survives power loss. `NORMAL`: survives process crashes only. */
  synchronous?: "FULL" | "NORMAL";
}

function keystoreError(message: string, cause?: unknown): MlsKeypackagesError {
  if (cause instanceof MlsKeypackagesError) return cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  // A page that fails its HMAC or SQLite's own checks: the file is damaged (not a bad call).
  const corrupt = code === "SQLITE_CORRUPT" || code === "SQLITE_NOTADB";
  return new MlsKeypackagesError(
    corrupt ? ErrorCode.CorruptDatabase : ErrorCode.KeystoreError,
    `${message}${typeof code === "string" ? ` (${code})` : ""}`,
    typeof code === "string" ? { sqliteCode: code } : {},
    { cause },
  );
}

/** A BLOB read back as a plain Uint8Array (no view onto a shared pool). */
function bytes(v: unknown): Uint8Array {
  const b = v as Uint8Array;
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return new Uint8Array(b.buffer);
  return Uint8Array.prototype.slice.call(b);
}

/**
 * `"x'<key hex>[<salt hex>]'"`. The salt only matters when the file is created (an existing
 * file's own salt wins); it is derived from the key so that two connections racing to create
 * the same new file agree on it (a random one each makes the loser read "not a database").
 */
function rawKeyPragma(key: DatabaseKey, withSalt: boolean): string {
  const k = key.bytes();
  let hex = toHex(k);
  if (withSalt)
    hex += createHash("sha256")
      .update("mls-keypackages/sqlcipher-salt/v1")
      .update(k)
      .digest("hex")
      .slice(0, 32);
  k.fill(0);
  return `"x'${hex}'"`;
}

/** Applies the cipher settings and key to a fresh connection (nothing is written). */
function applyKey(db: Db, key: DatabaseKey): void {
  db.pragma("cipher='sqlcipher'");
  db.pragma("legacy=4");
  db.pragma(`key=${rawKeyPragma(key, true)}`);
}

/** Column layout and conversions of one table. `cols[0]` is the primary key. */
interface TableSpec<T extends TableName> {
  cols: readonly string[];
  keyParam(key: string): unknown;
  params(key: string, row: RowOf[T]): Raw;
  fromRaw(r: Raw): RowOf[T];
  keyOfRaw(r: Raw): string;
}

type Specs = { [T in TableName]: TableSpec<T> };

const hexKeyParam = (key: string): unknown => fromHex(key);

/** The two private key tables share one layout: public key (BLOB) → private key. */
const PRIVATE_KEY_SPEC: TableSpec<"hpke_private_keys"> & TableSpec<"encryption_keypairs"> = {
  cols: ["public_key", "private_key"],
  keyParam: hexKeyParam,
  params: (k, r) => [fromHex(k), r.privateKey],
  fromRaw: (r) => ({ publicKey: bytes(r[0]), privateKey: bytes(r[1]) }),
  keyOfRaw: (r) => toHex(r[0] as Uint8Array),
};

const SPECS: Specs = {
  credentials: {
    cols: [
      "id",
      "client_id",
      "ciphersuite",
      "credential_type",
      "public_key",
      "credential",
      "signature_private_key",
      "created_at",
    ],
    keyParam: (k) => k,
    params: (k, r) => [
      k,
      r.clientId,
      r.ciphersuite,
      r.credentialType,
      r.publicKey,
      r.credential,
      r.signaturePrivateKey,
      r.createdAt,
    ],
    fromRaw: (r) => ({
      id: r[0] as string,
      clientId: bytes(r[1]),
      ciphersuite: r[2] as number,
      credentialType: r[3] as number,
      publicKey: bytes(r[4]),
      credential: bytes(r[5]),
      signaturePrivateKey: bytes(r[6]),
      createdAt: r[7] as number,
    }),
    keyOfRaw: (r) => r[0] as string,
  },
  keypackages: {
    cols: [
      "ref",
      "credential_id",
      "ciphersuite",
      "credential_type",
      "not_before",
      "not_after",
      "last_resort",
      "init_key",
      "encryption_key",
      "keypackage",
    ],
    keyParam: (k) => k,
    params: (k, r) => [
      k,
      r.credentialId,
      r.ciphersuite,
      r.credentialType,
      r.notBefore,
      r.notAfter,
      r.lastResort ? 1 : 0,
      r.initKey,
      r.encryptionKey,
      r.keypackage,
    ],
    fromRaw: (r) => ({
      ref: r[0] as string,
      credentialId: r[1] as string,
      ciphersuite: r[2] as number,
      credentialType: r[3] as number,
      notBefore: r[4] as number,
      notAfter: r[5] as number,
      lastResort: r[6] === 1,
      initKey: r[7] as string,
      encryptionKey: r[8] as string,
      keypackage: bytes(r[9]),
    }),
    keyOfRaw: (r) => r[0] as string,
  },
  hpke_private_keys: PRIVATE_KEY_SPEC,
  encryption_keypairs: PRIVATE_KEY_SPEC,
  conversations: {
    cols: ["id", "credential_id", "state"],
    keyParam: hexKeyParam,
    params: (k, r) => [fromHex(k), r.credentialId, r.state],
    fromRaw: (r) => ({ id: bytes(r[0]), credentialId: r[1] as string, state: bytes(r[2]) }),
    keyOfRaw: (r) => toHex(r[0] as Uint8Array),
  },
  kv: {
    cols: ["key", "value"],
    keyParam: (k) => k,
    params: (k, r) => [k, r.value],
    fromRaw: (r) => ({ key: r[0] as string, value: bytes(r[1]) }),
    keyOfRaw: (r) => r[0] as string,
  },
};

interface TableStmts {
  get: Stmt;
  all: Stmt;
  insertIgnore: Stmt;
  upsert: Stmt;
  delete: Stmt;
}

/** Thrown inside a transaction body to roll back after a row check failed. */
function alreadyExists(table: TableName): MlsKeypackagesError {
  return new MlsKeypackagesError(
    ErrorCode.AlreadyExists,
    `a different row already exists in ${table} under this key`,
    { table },
  );
}

export class SqliteKeystore implements Keystore {
  readonly backend = "sqlite";
  readonly path: string;
  #db: Db | undefined;
  readonly #stmts = new Map<TableName, TableStmts>();
  readonly #misc = new Map<string, Stmt>();
  readonly #applyTx: (ops: readonly StagedOp[]) => void;
  #meta: Map<string, KeypackageMeta> | undefined;
  #metaVersion = -1;

  /** @internal use `openSqliteKeystore`. */
  constructor(db: Db, path: string) {
    this.#db = db;
    this.path = path;
    const tx = db.transaction((ops: readonly StagedOp[]) => {
      for (const op of ops) this.#apply(op);
    });
    this.#applyTx = (ops) => tx.immediate(ops);
  }

  #open(): Db {
    if (this.#db === undefined)
      throw new MlsKeypackagesError(ErrorCode.KeystoreClosed, "the keystore is closed");
    return this.#db;
  }

  #table(t: TableName): TableStmts {
    let s = this.#stmts.get(t);
    if (s === undefined) {
      const db = this.#open();
      const spec = SPECS[t] as TableSpec<TableName>;
      const cols = spec.cols.join(", ");
      const pk = spec.cols[0] as string;
      const marks = spec.cols.map(() => "?").join(", ");
      s = {
        get: db.prepare(`SELECT ${cols} FROM ${t} WHERE ${pk} = ?`).raw(),
        all: db.prepare(`SELECT ${cols} FROM ${t}`).raw(),
        insertIgnore: db.prepare(`INSERT INTO ${t} (${cols}) VALUES (${marks}) ON CONFLICT DO NOTHING`),
        upsert: db.prepare(`INSERT OR REPLACE INTO ${t} (${cols}) VALUES (${marks})`),
        delete: db.prepare(`DELETE FROM ${t} WHERE ${pk} = ?`),
      };
      this.#stmts.set(t, s);
    }
    return s;
  }

  #stmt(sql: string, raw: boolean, pluck = false): Stmt {
    let s = this.#misc.get(sql);
    if (s === undefined) {
      s = this.#open().prepare(sql);
      if (raw) s.raw();
      if (pluck) s.pluck();
      this.#misc.set(sql, s);
    }
    return s;
  }

  #apply(op: StagedOp): void {
    const spec = SPECS[op.table] as TableSpec<TableName>;
    const s = this.#table(op.table);
    if (op.kind === "delete") {
      let k: unknown;
      try {
        k = spec.keyParam(op.key);
      } catch {
        return; // not a valid key: nothing stored under it
      }
      s.delete.run(k);
      return;
    }
    const params = spec.params(op.key, op.row as never);
    if (op.kind === "insert" || INSERT_ONLY.has(op.table)) {
      if (s.insertIgnore.run(...params).changes === 1) return;
      const existing = s.get.get(params[0]) as Raw | undefined;
      if (existing === undefined || existing.length !== params.length) throw alreadyExists(op.table);
      for (let i = 0; i < params.length; i++) {
        // Booleans are stored as 0/1 and `params` already holds them that way.
        if (!rowsEqual(existing[i], params[i])) throw alreadyExists(op.table);
      }
      return;
    }
    s.upsert.run(...params);
  }

  async get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined> {
    const spec = SPECS[table] as TableSpec<T>;
    const s = this.#table(table);
    let k: unknown;
    try {
      k = spec.keyParam(key);
    } catch {
      return undefined;
    }
    try {
      const r = s.get.get(k) as Raw | undefined;
      return r === undefined ? undefined : spec.fromRaw(r);
    } catch (e) {
      throw keystoreError(`reading ${table} failed`, e);
    }
  }

  async all<T extends TableName>(table: T): Promise<RowOf[T][]> {
    const spec = SPECS[table] as TableSpec<T>;
    const s = this.#table(table);
    try {
      return (s.all.all() as Raw[]).map((r) => spec.fromRaw(r));
    } catch (e) {
      throw keystoreError(`reading ${table} failed`, e);
    }
  }

  /**
   * Metadata of every key package, cached in memory (it is all public) and kept in step:
   * our own commits update it, another connection's commit changes `PRAGMA data_version`
   * and the next read reloads it from the covering index.
   */
  #metaCache(): Map<string, KeypackageMeta> {
    const version = this.#stmt("PRAGMA data_version", false, true).get() as number;
    if (this.#meta !== undefined && version === this.#metaVersion) return this.#meta;
    const rows = this.#stmt(
      "SELECT ref, credential_id, ciphersuite, credential_type, not_before, not_after, last_resort FROM keypackages",
      true,
    ).all() as Raw[];
    const m = new Map<string, KeypackageMeta>();
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i] as Raw;
      m.set(r[0] as string, {
        ref: r[0] as string,
        credentialId: r[1] as string,
        ciphersuite: r[2] as number,
        credentialType: r[3] as number,
        notBefore: r[4] as number,
        notAfter: r[5] as number,
        lastResort: r[6] === 1,
      });
    }
    this.#meta = m;
    this.#metaVersion = version;
    return m;
  }

  async listKeypackageMeta(): Promise<KeypackageMeta[]> {
    const out: KeypackageMeta[] = [];
    for (const m of this.#metaCache().values()) out.push({ ...m });
    return out;
  }

  async keypackageRefsForCredential(credentialId: string): Promise<string[]> {
    return this.#stmt("SELECT ref FROM keypackages WHERE credential_id = ?", false, true).all(
      credentialId,
    ) as string[];
  }

  async conversationsForCredential(credentialId: string): Promise<string[]> {
    const ids = this.#stmt("SELECT id FROM conversations WHERE credential_id = ?", false, true).all(
      credentialId,
    );
    return (ids as Uint8Array[]).map(toHex);
  }

  async counts(): Promise<RowCounts> {
    const r = this.#stmt(
      `SELECT (SELECT count(*) FROM credentials), (SELECT count(*) FROM keypackages),
              (SELECT count(*) FROM hpke_private_keys), (SELECT count(*) FROM encryption_keypairs),
              (SELECT count(*) FROM conversations), (SELECT count(*) FROM kv)`,
      true,
    ).get() as number[];
    return {
      credentials: r[0] as number,
      keypackages: r[1] as number,
      hpke_private_keys: r[2] as number,
      encryption_keypairs: r[3] as number,
      conversations: r[4] as number,
      kv: r[5] as number,
    };
  }

  async commit(ops: readonly StagedOp[]): Promise<void> {
    this.#open();
    if (ops.length === 0) return;
    try {
      this.#applyTx(ops);
    } catch (e) {
      throw keystoreError("commit failed", e);
    }
    const meta = this.#meta;
    if (meta === undefined) return;
    for (const op of ops) {
      if (op.table !== "keypackages") continue;
      if (op.kind === "delete") meta.delete(op.key);
      else {
        const r = op.row;
        meta.set(op.key, {
          ref: op.key,
          credentialId: r.credentialId,
          ciphersuite: r.ciphersuite,
          credentialType: r.credentialType,
          notBefore: r.notBefore,
          notAfter: r.notAfter,
          lastResort: r.lastResort === true,
        });
      }
    }
  }

  /**
   * Re-encrypt the file under `key` (`PRAGMA rekey`). SQLCipher cannot rekey in WAL mode, so the
   * WAL is checkpointed and the journal switched to DELETE for the duration. Needs to be the only
   * connection to the file.
   */
  async updateKey(key: DatabaseKey): Promise<void> {
    const db = this.#open();
    try {
      db.pragma("wal_checkpoint(TRUNCATE)");
      const mode = db.pragma("journal_mode=DELETE", { simple: true });
      if (mode !== "delete") {
        throw new MlsKeypackagesError(
          ErrorCode.KeystoreError,
          "cannot rekey: another connection has the database open",
        );
      }
      try {
        db.pragma(`rekey=${rawKeyPragma(key, false)}`);
      } finally {
        db.pragma("journal_mode=WAL");
      }
    } catch (e) {
      throw keystoreError("rekeying failed", e);
    }
  }

  /** `PRAGMA integrity_check` (["ok"] when healthy). */
  async integrityCheck(): Promise<string[]> {
    const db = this.#open();
    let rows: Record<string, unknown>[];
    try {
      rows = db.pragma("integrity_check") as Record<string, unknown>[];
    } catch (e) {
      throw keystoreError("integrity check failed", e);
    }
    return rows.map((r) => String(Object.values(r)[0]));
  }

  /** Current schema version of the file. */
  async schemaVersion(): Promise<number> {
    return this.#open().pragma("user_version", { simple: true }) as number;
  }

  async close(): Promise<void> {
    const db = this.#db;
    if (db === undefined) return;
    this.#db = undefined;
    this.#stmts.clear();
    this.#misc.clear();
    this.#meta = undefined;
    db.close();
  }
}

/**
 * The error for a file SQLite refused at open (`SQLITE_NOTADB`, `SQLITE_CORRUPT`):
 * `WrongDatabaseKey` only when the file looks like an intact SQLCipher database that the key
 * does not open, else `CorruptDatabase` (see sqliteDiagnosis.ts).
 */
function openFailure(path: string, key: DatabaseKey, cause: unknown): MlsKeypackagesError {
  const raw = key.bytes();
  let d: ReturnType<typeof diagnoseSqlcipherFile>;
  try {
    d = diagnoseSqlcipherFile(path, raw);
  } catch (e) {
    return keystoreError("cannot open the database", e);
  } finally {
    raw.fill(0);
  }
  if (d.verdict === "wrong_key") {
    return new MlsKeypackagesError(
      ErrorCode.WrongDatabaseKey,
      "the key does not open this database",
      {},
      { cause },
    );
  }
  return new MlsKeypackagesError(
    ErrorCode.CorruptDatabase,
    `the database file is damaged or not a keystore (${d.reason}: ${d.detail})`,
    { reason: d.reason },
    { cause },
  );
}

const isOpenFailure = (e: unknown): boolean => {
  const code = (e as { code?: unknown } | undefined)?.code;
  return code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT";
};

/**
 * Open a connection with the cipher and key applied and the key verified; nothing has been
 * written yet. Throws `WrongDatabaseKey` or `CorruptDatabase` (file left untouched). Exposed for
 * tests and tools.
 */
export function openEncryptedSqlite(
  path: string,
  key: DatabaseKey,
  options: SqliteOptions & { readonly?: boolean } = {},
): Db {
  let db: Db;
  try {
    db = new BetterSqlite3(path, {
      readonly: options.readonly ?? false,
      fileMustExist: options.readonly ?? false,
      timeout: options.busyTimeoutMs ?? 10_000,
    });
  } catch (e) {
    throw keystoreError("cannot open the database file", e);
  }
  try {
    applyKey(db, key);
    db.prepare("SELECT count(*) FROM sqlite_master").get();
    return db;
  } catch (e) {
    db.close();
    if (isOpenFailure(e)) throw openFailure(path, key, e);
    throw keystoreError("cannot open the database", e);
  }
}

/** Bring the schema to `SCHEMA_VERSION`, in one immediate transaction (safe with concurrent openers). */
function migrate(db: Db): void {
  const current = (): number => db.pragma("user_version", { simple: true }) as number;
  const tooNew = (v: number): MlsKeypackagesError =>
    new MlsKeypackagesError(
      ErrorCode.SchemaTooNew,
      `database schema v${v} is newer than this library (v${SCHEMA_VERSION})`,
      {
        version: v,
        supported: SCHEMA_VERSION,
      },
    );
  let v = current();
  if (v > SCHEMA_VERSION) throw tooNew(v);
  db.pragma("journal_mode=WAL");
  if (v === SCHEMA_VERSION) return;
  db.transaction(() => {
    v = current();
    if (v > SCHEMA_VERSION) throw tooNew(v);
    for (; v < SCHEMA_VERSION; v++) {
      const step = SQLITE_MIGRATIONS[v];
      if (step === undefined)
        throw new MlsKeypackagesError(ErrorCode.KeystoreError, `no migration from schema v${v}`);
      db.exec(step);
    }
    db.pragma(`user_version=${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Open (or create) the encrypted SQLite keystore at `path`. Throws `WrongDatabaseKey` when
 * `key` does not decrypt an existing file, `CorruptDatabase` when the file is damaged or not a
 * keystore (truncated, corrupt pages, a plain SQLite or other file), `SchemaTooNew` when the
 * file comes from a newer version.
 */
export async function openSqliteKeystore(
  path: string,
  key: DatabaseKey,
  options: SqliteOptions = {},
): Promise<SqliteKeystore> {
  const db = openEncryptedSqlite(path, key, options);
  try {
    migrate(db);
    db.pragma(`synchronous=${options.synchronous ?? "FULL"}`);
    db.pragma("foreign_keys=OFF");
    // Deleted rows (spent HPKE init keys) are zeroed, not left in free space: forward secrecy.
    db.pragma("secure_delete=ON");
    return new SqliteKeystore(db, path);
  } catch (e) {
    db.close();
    if (isOpenFailure(e)) throw openFailure(path, key, e);
    throw keystoreError("cannot open the keystore", e);
  }
}
