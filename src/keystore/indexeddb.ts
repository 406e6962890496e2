/**
 * IndexedDB keystore (browsers). One object store per table. Key package metadata and the
 * credential id of conversations stay in clear, indexed fields so listing never decrypts;
 * everything else of a row is one AES-256-GCM ciphertext (`v`) bound to table and key.
 * Insert-only rows also carry `h`, an HMAC of the plaintext row, so that "same value
 * again" can be told from "different value" inside the IDB transaction, which cannot
 * await WebCrypto without auto-committing.
 */
import { wrap, type IDBPDatabase } from "idb";
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import {
  INSERT_ONLY,
  SCHEMA_VERSION,
  TABLES,
  type Keystore,
  type KeypackageMeta,
  type RowCounts,
  type RowOf,
  type StagedOp,
  type TableName,
} from "./contract.js";
import { constantTimeEqual } from "../mls/crypto/bytes.js";
import type { DatabaseKey } from "./databaseKey.js";
import {
  deriveRecordKeys,
  macRecord,
  openRecord,
  recordAad,
  sealRecord,
  type RecordKeys,
} from "./encryption.js";

/** Store of the key-check record. */
const META = "meta";
const KEYCHECK = "keycheck";
const KEYCHECK_PLAINTEXT = new TextEncoder().encode("mls-keypackages database key check v1");
const ALL_STORES: readonly string[] = [...TABLES, META];

/** What an object store holds: clear fields (incl. the key path), `v` = sealed secret part, `h` = row MAC. */
export interface StoredRecord {
  [field: string]: unknown;
  v: Uint8Array;
  h?: Uint8Array;
}

// ---- compact row encoding -------------------------------------------------------------

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

class Writer {
  readonly #chunks: Uint8Array[] = [];
  #len = 0;
  #push(b: Uint8Array): void {
    this.#chunks.push(b);
    this.#len += b.length;
  }
  u32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n);
    this.#push(b);
    return this;
  }
  num(n: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, n);
    this.#push(b);
    return this;
  }
  bool(v: boolean): this {
    this.#push(new Uint8Array([v ? 1 : 0]));
    return this;
  }
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.#push(b);
    return this;
  }
  str(s: string): this {
    return this.bytes(utf8.encode(s));
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.#len);
    let o = 0;
    for (const c of this.#chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

class Reader {
  readonly #b: Uint8Array;
  readonly #view: DataView;
  #o = 0;
  constructor(b: Uint8Array) {
    this.#b = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u32(): number {
    const v = this.#view.getUint32(this.#o);
    this.#o += 4;
    return v;
  }
  num(): number {
    const v = this.#view.getFloat64(this.#o);
    this.#o += 8;
    return v;
  }
  bytes(): Uint8Array {
    const n = this.u32();
    if (this.#o + n > this.#b.length) throw new RangeError("truncated record");
    const v = this.#b.slice(this.#o, this.#o + n);
    this.#o += n;
    return v;
  }
  str(): string {
    return utf8d.decode(this.bytes());
  }
}

/** How one table maps onto its object store. */
interface IdbSpec<T extends TableName> {
  keyPath: string;
  /** Clear fields of the record (with the key path set to `key`). */
  clear(key: string, row: RowOf[T]): Record<string, unknown>;
  /** Secret part (encrypted). */
  secret(row: RowOf[T]): Uint8Array;
  /** Row from clear fields + decrypted secret part. */
  decode(rec: StoredRecord, secret: Uint8Array): RowOf[T];
  /** Clear value fields that the row MAC must also cover (beyond the key). */
  clearCanon?(row: RowOf[T]): Uint8Array;
}

const pairSpec: IdbSpec<"hpke_private_keys"> & IdbSpec<"encryption_keypairs"> = {
  keyPath: "publicKey",
  clear: (key) => ({ publicKey: key }),
  secret: (r) => new Writer().bytes(r.publicKey).bytes(r.privateKey).done(),
  decode: (_rec, s) => {
    const rd = new Reader(s);
    return { publicKey: rd.bytes(), privateKey: rd.bytes() };
  },
};

const SPECS: { [T in TableName]: IdbSpec<T> } = {
  credentials: {
    keyPath: "id",
    clear: (key) => ({ id: key }),
    secret: (r) =>
      new Writer()
        .bytes(r.clientId)
        .num(r.ciphersuite)
        .num(r.credentialType)
        .bytes(r.publicKey)
        .bytes(r.credential)
        .bytes(r.signaturePrivateKey)
        .num(r.createdAt)
        .done(),
    decode: (rec, s) => {
      const rd = new Reader(s);
      return {
        id: rec.id as string,
        clientId: rd.bytes(),
        ciphersuite: rd.num(),
        credentialType: rd.num(),
        publicKey: rd.bytes(),
        credential: rd.bytes(),
        signaturePrivateKey: rd.bytes(),
        createdAt: rd.num(),
      };
    },
  },
  keypackages: {
    keyPath: "ref",
    clear: (key, r) => ({
      ref: key,
      credentialId: r.credentialId,
      ciphersuite: r.ciphersuite,
      credentialType: r.credentialType,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      lastResort: r.lastResort,
    }),
    secret: (r) => new Writer().str(r.initKey).str(r.encryptionKey).bytes(r.keypackage).done(),
    decode: (rec, s) => {
      const rd = new Reader(s);
      return {
        ...metaOf(rec),
        initKey: rd.str(),
        encryptionKey: rd.str(),
        keypackage: rd.bytes(),
      };
    },
    clearCanon: (r) =>
      new Writer()
        .str(r.credentialId)
        .num(r.ciphersuite)
        .num(r.credentialType)
        .num(r.notBefore)
        .num(r.notAfter)
        .bool(r.lastResort)
        .done(),
  },
  hpke_private_keys: pairSpec,
  encryption_keypairs: pairSpec,
  conversations: {
    keyPath: "id",
    clear: (key, r) => ({ id: key, credentialId: r.credentialId }),
    secret: (r) => new Writer().bytes(r.id).bytes(r.state).done(),
    decode: (rec, s) => {
      const rd = new Reader(s);
      return { id: rd.bytes(), credentialId: rec.credentialId as string, state: rd.bytes() };
    },
    clearCanon: (r) => new Writer().str(r.credentialId).done(),
  },
  kv: {
    keyPath: "key",
    clear: (key) => ({ key }),
    secret: (r) => new Writer().bytes(r.value).done(),
    decode: (rec, s) => ({ key: rec.key as string, value: new Reader(s).bytes() }),
  },
};

function metaOf(rec: Record<string, unknown>): KeypackageMeta {
  return {
    ref: rec.ref as string,
    credentialId: rec.credentialId as string,
    ciphersuite: rec.ciphersuite as number,
    credentialType: rec.credentialType as number,
    notBefore: rec.notBefore as number,
    notAfter: rec.notAfter as number,
    lastResort: rec.lastResort === true,
  };
}

/** Turn a row into its stored record (encrypts; MACs rows that need insert-only checks). */
async function sealRow<T extends TableName>(
  keys: RecordKeys,
  table: T,
  key: string,
  row: RowOf[T],
  withMac: boolean,
): Promise<StoredRecord> {
  const spec = SPECS[table] as IdbSpec<T>;
  const aad = recordAad(table, key);
  const secret = spec.secret(row);
  const v = await sealRecord(keys.aes, aad, secret);
  const rec: StoredRecord = { ...spec.clear(key, row), v };
  if (withMac) {
    const canon = spec.clearCanon ? new Writer().bytes(secret).bytes(spec.clearCanon(row)).done() : secret;
    rec.h = await macRecord(keys.mac, aad, canon);
  }
  secret.fill(0);
  return rec;
}

async function openRow<T extends TableName>(
  keys: RecordKeys,
  table: T,
  rec: StoredRecord,
): Promise<RowOf[T]> {
  const spec = SPECS[table] as IdbSpec<T>;
  const key = rec[spec.keyPath] as string;
  const secret = await openRecord(keys.aes, recordAad(table, key), rec.v, table);
  try {
    return spec.decode(rec, secret);
  } finally {
    secret.fill(0);
  }
}

function idbError(message: string, cause: unknown): MlsKeypackagesError {
  if (cause instanceof MlsKeypackagesError) return cause;
  const name = (cause as { name?: unknown } | undefined)?.name;
  return new MlsKeypackagesError(
    ErrorCode.KeystoreError,
    `${message}${typeof name === "string" ? ` (${name})` : ""}`,
    {},
    { cause },
  );
}

// ---- schema -----------------------------------------------------------------------------

/**
 * Schema steps, run inside the `versionchange` transaction. v1: one store per table + `meta`;
 * v2: `lastResort` on key packages (clear field, defaults to false) and an index on
 * conversations' credential id. Exported so tests can build an old database.
 */
export function upgradeIndexedDbSchema(
  db: IDBDatabase,
  tx: IDBTransaction,
  oldVersion: number,
  newVersion: number,
): void {
  if (oldVersion < 1 && newVersion >= 1) {
    db.createObjectStore("credentials", { keyPath: "id" });
    const kp = db.createObjectStore("keypackages", { keyPath: "ref" });
    kp.createIndex("credentialId", "credentialId");
    db.createObjectStore("hpke_private_keys", { keyPath: "publicKey" });
    db.createObjectStore("encryption_keypairs", { keyPath: "publicKey" });
    db.createObjectStore("conversations", { keyPath: "id" });
    db.createObjectStore("kv", { keyPath: "key" });
    db.createObjectStore(META, { keyPath: "name" });
  }
  if (oldVersion < 2 && newVersion >= 2) {
    tx.objectStore("conversations").createIndex("credentialId", "credentialId");
    const cursorReq = tx.objectStore("keypackages").openCursor();
    cursorReq.onsuccess = () => {
      const c = cursorReq.result;
      if (c === null) return;
      const rec = c.value as Record<string, unknown>;
      if (rec.lastResort === undefined) c.update({ ...rec, lastResort: false });
      c.continue();
    };
  }
}

export interface IndexedDbOptions {
  /** The IndexedDB factory (default: `globalThis.indexedDB`). */
  indexedDB?: IDBFactory;
}

async function openRaw(factory: IDBFactory, name: string): Promise<IDBPDatabase> {
  const req = factory.open(name, SCHEMA_VERSION);
  req.onupgradeneeded = (ev) => {
    const tx = req.transaction;
    if (tx === null) return;
    upgradeIndexedDbSchema(req.result, tx, ev.oldVersion, ev.newVersion ?? SCHEMA_VERSION);
  };
  try {
    const db = await wrap(req);
    if (db === undefined) throw new Error("open returned no database");
    return db;
  } catch (e) {
    if ((e as { name?: unknown }).name === "VersionError") {
      throw new MlsKeypackagesError(
        ErrorCode.SchemaTooNew,
        `IndexedDB database "${name}" has a schema newer than this library (v${SCHEMA_VERSION})`,
        {
          supported: SCHEMA_VERSION,
        },
      );
    }
    throw idbError(`cannot open IndexedDB database "${name}"`, e);
  }
}

type Prepared =
  | { kind: "delete"; table: TableName; key: string }
  | { kind: "write"; table: TableName; key: string; record: StoredRecord; check: boolean };

const ignore = (): void => {};

export class IndexedDbKeystore implements Keystore {
  readonly backend = "indexeddb";
  readonly name: string;
  #db: IDBPDatabase | undefined;
  #keys: RecordKeys;

  /** @internal use `openIndexedDbKeystore`. */
  constructor(db: IDBPDatabase, name: string, keys: RecordKeys) {
    this.#db = db;
    this.name = name;
    this.#keys = keys;
    // Another tab wants to upgrade: step aside rather than block it.
    db.addEventListener("versionchange", () => {
      db.close();
      this.#db = undefined;
    });
  }

  #open(): IDBPDatabase {
    if (this.#db === undefined)
      throw new MlsKeypackagesError(ErrorCode.KeystoreClosed, "the keystore is closed");
    return this.#db;
  }

  async get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined> {
    const db = this.#open();
    let rec: StoredRecord | undefined;
    try {
      rec = (await db.get(table, key)) as StoredRecord | undefined;
    } catch (e) {
      throw idbError(`reading ${table} failed`, e);
    }
    return rec === undefined ? undefined : openRow(this.#keys, table, rec);
  }

  async all<T extends TableName>(table: T): Promise<RowOf[T][]> {
    const db = this.#open();
    let recs: StoredRecord[];
    try {
      recs = (await db.getAll(table)) as StoredRecord[];
    } catch (e) {
      throw idbError(`reading ${table} failed`, e);
    }
    const keys = this.#keys;
    return Promise.all(recs.map((r) => openRow(keys, table, r)));
  }

  async listKeypackageMeta(): Promise<KeypackageMeta[]> {
    const recs = (await this.#open().getAll("keypackages")) as Record<string, unknown>[];
    return recs.map(metaOf);
  }

  async keypackageRefsForCredential(credentialId: string): Promise<string[]> {
    return (await this.#open().getAllKeysFromIndex("keypackages", "credentialId", credentialId)) as string[];
  }

  async conversationsForCredential(credentialId: string): Promise<string[]> {
    return (await this.#open().getAllKeysFromIndex(
      "conversations",
      "credentialId",
      credentialId,
    )) as string[];
  }

  async counts(): Promise<RowCounts> {
    const tx = this.#open().transaction([...TABLES], "readonly");
    const n = await Promise.all(TABLES.map((t) => tx.objectStore(t).count()));
    await tx.done;
    const c = {} as RowCounts;
    TABLES.forEach((t, i) => (c[t] = n[i] as number));
    return c;
  }

  async commit(ops: readonly StagedOp[]): Promise<void> {
    const db = this.#open();
    if (ops.length === 0) return;
    // 1. Encrypt everything first: an IDB transaction auto-commits across non-IDB awaits.
    const keys = this.#keys;
    const prepared: Prepared[] = await Promise.all(
      ops.map(async (op): Promise<Prepared> => {
        if (op.kind === "delete") return { kind: "delete", table: op.table, key: op.key };
        const check = op.kind === "insert" || INSERT_ONLY.has(op.table);
        const record = await sealRow(keys, op.table, op.key, op.row as never, check);
        return { kind: "write", table: op.table, key: op.key, record, check };
      }),
    );
    // 2. One readwrite transaction over every touched store, ops in order.
    const stores = [...new Set(prepared.map((p) => p.table))];
    const tx = db.transaction(stores, "readwrite");
    const done = tx.done;
    done.catch(ignore);
    try {
      // Committed state of every key whose first touch is a checked write, fetched up front.
      const first = new Map<string, Promise<unknown>>();
      const touched = new Set<string>();
      for (const p of prepared) {
        const id = `${p.table}\u0000${p.key}`;
        if (!touched.has(id) && p.kind === "write" && p.check)
          first.set(id, tx.objectStore(p.table).get(p.key));
        touched.add(id);
      }
      const existing = new Map<string, StoredRecord | null>();
      const got = await Promise.all(first.values());
      [...first.keys()].forEach((id, i) => existing.set(id, (got[i] as StoredRecord | undefined) ?? null));

      for (const p of prepared) {
        const id = `${p.table}\u0000${p.key}`;
        const store = tx.objectStore(p.table);
        if (p.kind === "delete") {
          store.delete(p.key).catch(ignore);
          existing.set(id, null);
          continue;
        }
        if (p.check) {
          const cur = existing.get(id) ?? null;
          if (cur !== null) {
            if (
              cur.h instanceof Uint8Array &&
              p.record.h !== undefined &&
              constantTimeEqual(cur.h, p.record.h)
            )
              continue;
            throw new MlsKeypackagesError(
              ErrorCode.AlreadyExists,
              `a different row already exists in ${p.table} under this key`,
              {
                table: p.table,
              },
            );
          }
        }
        store.put(p.record).catch(ignore);
        existing.set(id, p.record);
      }
      await done;
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // already finished
      }
      throw idbError("commit failed", e);
    }
  }

  /** Re-encrypt every record under `key`, in one readwrite transaction. */
  async updateKey(key: DatabaseKey): Promise<void> {
    const db = this.#open();
    const newKeys = await deriveRecordKeys(key);
    for (let attempt = 0; attempt < 5; attempt++) {
      // Snapshot and decrypt with the old key, re-encrypt with the new one (outside any transaction).
      const rtx = db.transaction([...TABLES], "readonly");
      const snapshot = await Promise.all(
        TABLES.map((t) => rtx.objectStore(t).getAll() as Promise<StoredRecord[]>),
      );
      await rtx.done;
      const resealed = await Promise.all(
        TABLES.map((t, i) =>
          Promise.all(
            (snapshot[i] as StoredRecord[]).map(async (rec) => {
              const row = await openRow(this.#keys, t, rec);
              const k = rec[SPECS[t].keyPath] as string;
              return sealRow(newKeys, t, k, row as never, rec.h !== undefined || INSERT_ONLY.has(t));
            }),
          ),
        ),
      );
      const check = await sealRecord(newKeys.aes, recordAad(META, KEYCHECK), KEYCHECK_PLAINTEXT);

      const tx = db.transaction([...ALL_STORES], "readwrite");
      const done = tx.done;
      done.catch(ignore);
      try {
        // Retry if anything changed since the snapshot.
        const now = await Promise.all(
          TABLES.map((t) => tx.objectStore(t).getAll() as Promise<StoredRecord[]>),
        );
        const unchanged = now.every((recs, i) => {
          const before = snapshot[i] as StoredRecord[];
          return (
            recs.length === before.length &&
            recs.every((r, j) => constantTimeEqual(r.v, (before[j] as StoredRecord).v))
          );
        });
        if (!unchanged) {
          tx.abort();
          continue;
        }
        TABLES.forEach((t, i) => {
          const store = tx.objectStore(t);
          store.clear().catch(ignore);
          for (const rec of resealed[i] as StoredRecord[]) store.put(rec).catch(ignore);
        });
        tx.objectStore(META).put({ name: KEYCHECK, v: check }).catch(ignore);
        await done;
        this.#keys = newKeys;
        return;
      } catch (e) {
        try {
          tx.abort();
        } catch {
          // already finished
        }
        throw idbError("rekeying failed", e);
      }
    }
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "rekeying failed: the database kept changing");
  }

  async close(): Promise<void> {
    const db = this.#db;
    if (db === undefined) return;
    this.#db = undefined;
    db.close();
  }
}

/** Verify the key against the key-check record, creating it in a new database. */
async function checkKey(db: IDBPDatabase, keys: RecordKeys): Promise<void> {
  const aad = recordAad(META, KEYCHECK);
  for (let attempt = 0; attempt < 2; attempt++) {
    const rec = (await db.get(META, KEYCHECK)) as StoredRecord | undefined;
    if (rec !== undefined) {
      let pt: Uint8Array;
      try {
        pt = await openRecord(keys.aes, aad, rec.v, META);
      } catch {
        throw new MlsKeypackagesError(ErrorCode.WrongDatabaseKey, "the key does not open this database");
      }
      if (!constantTimeEqual(pt, KEYCHECK_PLAINTEXT))
        throw new MlsKeypackagesError(ErrorCode.WrongDatabaseKey, "the key does not open this database");
      return;
    }
    const v = await sealRecord(keys.aes, aad, KEYCHECK_PLAINTEXT);
    try {
      await db.add(META, { name: KEYCHECK, v });
      return;
    } catch (e) {
      // Another connection created it meanwhile: check against theirs.
      if ((e as { name?: unknown }).name !== "ConstraintError")
        throw idbError("cannot write the key check", e);
    }
  }
  throw new MlsKeypackagesError(ErrorCode.KeystoreError, "cannot verify the database key");
}

/**
 * Open (or create) the encrypted IndexedDB keystore `name`. Throws `WrongDatabaseKey` when `key`
 * does not match the one the database was created with, `SchemaTooNew` for a newer schema.
 */
export async function openIndexedDbKeystore(
  name: string,
  key: DatabaseKey,
  options: IndexedDbOptions = {},
): Promise<IndexedDbKeystore> {
  const factory = options.indexedDB ?? globalThis.indexedDB;
  if (factory === undefined)
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "IndexedDB is not available here");
  const keys = await deriveRecordKeys(key);
  const db = await openRaw(factory, name);
  try {
    await checkKey(db, keys);
  } catch (e) {
    db.close();
    throw e;
  }
  return new IndexedDbKeystore(db, name, keys);
}
