/**
 * IndexedDB keystore (browsers): an encrypted, append-only commit log replayed into memory.
 *
 * Stores of the IndexedDB database (schema version 3):
 * - `log`    one record `{ seq, v }` per committed transaction: `v` = AES-256-GCM of the row
 *            changes (logFormat.ts), additional data bound to `seq`.
 * - `chunks` the snapshot: one record `{ id, v }` per non-empty bucket, rows grouped by a hash of
 *            table and key; additional data bound to id, bucket and bucket count.
 * - `meta`   `keycheck` (a known plaintext sealed under the key: a wrong key fails at open) and
 *            `head` `{ seq, keyEpoch, compactions, v }`, `v` = the sealed manifest (which chunk
 *            holds which bucket, as of log record `seq`).
 *
 * Open reads head, chunks and log in one read-only IndexedDB transaction and decrypts them into
 * in-memory tables; reads never touch IndexedDB again. A commit validates against memory, seals
 * its changes as one record and appends it in one read-write transaction (which also checks
 * that nobody appended meanwhile), so a commit costs one record whatever the number of rows.
 * When the log grows, compaction writes the buckets whose rows changed as new chunks and a new
 * head in one IndexedDB transaction (log records the head covers are then ignored, and deleted
 * afterwards). Transactions of several tabs serialize
 * on a Web Lock (sharedLock.ts); tabs tell each other about commits on a BroadcastChannel.
 * Databases of the earlier format (one object store per table, schema 1–2) are migrated at open.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import {
  INSERT_ONLY,
  TABLES,
  rowsEqual,
  type Keystore,
  type KeypackageMeta,
  type RowCounts,
  type RowOf,
  type StagedOp,
  type TableName,
  type Tables,
  emptyTableMaps,
  keypackageMetaOf,
} from "./contract.js";
import type { DatabaseKey } from "./databaseKey.js";
import { RecordDecryptionError, openRecord, recordAad, sealRecord, type RecordKeys } from "./encryption.js";
import { LEGACY_META, LEGACY_SCHEMA_VERSION, openLegacyRow, type StoredRecord } from "./indexeddbLegacy.js";
import {
  bucketHash,
  chunkAad,
  decodeEntries,
  decodeManifest,
  deriveAesKey,
  emptyManifest,
  encodeEntries,
  encodeManifest,
  headAad,
  logAad,
  type Entry,
  type Manifest,
} from "./logFormat.js";
import {
  SharedLock,
  defaultLockManager,
  unref as unrefTimer,
  type LockManagerLike,
  type TransactionLock,
} from "./sharedLock.js";

/** IndexedDB version of the commit-log format (1–2: the per-row format, migrated at open). */
export const INDEXEDDB_SCHEMA_VERSION = 3;

const META = LEGACY_META;
const LOG = "log";
const CHUNKS = "chunks";
const KEYCHECK = "keycheck";
const HEAD = "head";
const KEYCHECK_PLAINTEXT = new TextEncoder().encode("mls-keypackages database key check v1");

interface HeadRecord {
  name: typeof HEAD;
  seq: number;
  keyEpoch: number;
  compactions: number;
  v: Uint8Array;
}
interface KeycheckRecord {
  name: typeof KEYCHECK;
  v: Uint8Array;
}
interface LogRecord {
  seq: number;
  v: Uint8Array;
}
interface ChunkRecord {
  id: number;
  v: Uint8Array;
}

export interface CompactionOptions {
  /** Compact once the log holds this many records (default 32). */
  maxLogRecords?: number;
  /** … or this many bytes (default 1 MiB). */
  maxLogBytes?: number;
  /** Target plaintext size of a snapshot chunk (default 64 KiB). */
  chunkBytes?: number;
  /**
   * Wait for this many ms without a commit before compacting (default 300), so compaction runs
   * between bursts of transactions, not in their middle. A log past 4× the limits is compacted
   * at the next idle moment whatever the traffic.
   */
  quietMs?: number;
}

export interface IndexedDbOptions {
  /** The IndexedDB factory (default: `globalThis.indexedDB`). */
  indexedDB?: IDBFactory;
  /** Web Locks (default: `navigator.locks` when present; `null`: none). */
  locks?: LockManagerLike | null;
  /** BroadcastChannel constructor (default: the global one when present; `null`: none). */
  broadcastChannel?: (new (name: string) => BroadcastChannel) | null;
  /**
   * Durability of commit transactions (IndexedDB `durability`). Default `"default"` (the browser's
   * choice; Chromium: `relaxed`, which survives a closed tab or a browser crash but not
   * necessarily an OS crash or power loss). `"strict"` flushes to disk before a commit returns.
   */
  durability?: "default" | "strict" | "relaxed";
  /** When the log is compacted into the snapshot; `false`: only by `compact()`. */
  compaction?: CompactionOptions | false;
  /**
   * How long an idle connection keeps the cross-tab lock, ms (default 30 000). Another tab that
   * wants it asks on the BroadcastChannel and gets it as soon as this connection is idle, whatever
   * this value; a hidden or frozen page lets go at once. Taking the lock afresh costs a Web Lock
   * round trip and a read of the log tail (2–4 ms measured in Chromium), so a tab whose transactions
   * come seconds apart keeps it. A connection opened with `broadcastChannel: null` cannot ask: it
   * waits up to this long for an idle holder.
   */
  lockIdleMs?: number;
  /**
   * Share this realm's connection with other opens of the same database (default `true`): a
   * second open only checks the key. The first open's options apply to all. `false` gives an own
   * connection, as another tab would have (tests).
   */
  shared?: boolean;
}

/** Per table: key → seq of the last log record that changed the row (rows the snapshot lacks). */
type Dirty = { [T in TableName]: Map<string, number> };

// ---- IndexedDB plumbing ------------------------------------------------------------------

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
  });
}

function errName(e: unknown): string | undefined {
  const n = (e as { name?: unknown } | undefined)?.name;
  return typeof n === "string" ? n : undefined;
}

function idbError(message: string, cause: unknown): MlsKeypackagesError {
  if (cause instanceof MlsKeypackagesError) return cause;
  const name = errName(cause);
  return new MlsKeypackagesError(
    ErrorCode.KeystoreError,
    `${message}${name !== undefined ? ` (${name})` : ""}`,
    {},
    { cause },
  );
}

function corrupt(reason: string, message: string): MlsKeypackagesError {
  return new MlsKeypackagesError(ErrorCode.CorruptDatabase, `IndexedDB keystore: ${message}`, { reason });
}

function wrongKey(): MlsKeypackagesError {
  return new MlsKeypackagesError(ErrorCode.WrongDatabaseKey, "the key does not open this database");
}

// ---- snapshot ------------------------------------------------------------------------------

interface SealedSnapshot {
  manifest: Manifest;
  chunks: ChunkRecord[];
  /** Chunk ids the new manifest no longer uses. */
  removed: number[];
}

/**
 * Seal the buckets `dirty` (all when undefined) of `tables` as new chunks over `base` with
 * `buckets` buckets (all buckets are rewritten when that differs from `base.buckets`).
 */
async function sealSnapshot(
  aes: CryptoKey,
  tables: Tables,
  base: Manifest,
  buckets: number,
  seq: number,
  dirty: ReadonlySet<number> | undefined,
  yieldBetween = false,
): Promise<SealedSnapshot> {
  const full = dirty === undefined || buckets !== base.buckets;
  const rewrite = (b: number): boolean => full || (dirty as ReadonlySet<number>).has(b);
  const groups = new Map<number, Entry[]>();
  const mask = buckets - 1;
  for (const table of TABLES) {
    for (const [key, row] of tables[table] as Map<string, RowOf[TableName]>) {
      const b = bucketHash(table, key) & mask;
      if (!rewrite(b)) continue;
      let g = groups.get(b);
      if (g === undefined) groups.set(b, (g = []));
      g.push({ table, key, row });
    }
  }
  const ids = full ? new Array<number>(buckets).fill(0) : [...base.ids];
  const sizes = full ? new Array<number>(buckets).fill(0) : [...base.sizes];
  const removed = full ? base.ids.filter((id) => id !== 0) : [];
  let nextId = base.nextId;
  const jobs: Promise<ChunkRecord>[] = [];
  const touched = full ? Array.from({ length: buckets }, (_, b) => b) : [...(dirty as ReadonlySet<number>)];
  for (const b of touched) {
    if (!full && base.ids[b] !== 0) removed.push(base.ids[b] as number);
    const g = groups.get(b);
    if (g === undefined || g.length === 0) {
      ids[b] = 0;
      sizes[b] = 0;
      continue;
    }
    const id = nextId++;
    ids[b] = id;
    // Rows are captured above (they never change once stored); encoding can take turns with
    // the page's work.
    if (yieldBetween && jobs.length > 0) await yieldToPage();
    const payload = encodeEntries(g, 4096);
    sizes[b] = payload.length;
    jobs.push(
      sealRecord(aes, chunkAad(id, b, buckets), payload)
        .finally(() => payload.fill(0))
        .then((v) => ({ id, v })),
    );
  }
  const chunks = await Promise.all(jobs);
  return { manifest: { seq, buckets, nextId, ids, sizes }, chunks, removed };
}

/** Let the page run (between chunks of background work). */
function yieldToPage(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Bucket count for `bytes` of rows: a power of two, changed only when off by 2× up or 4× down. */
function bucketCount(current: number, bytes: number, chunkBytes: number): number {
  let want = 1;
  while (want < 65536 && want * chunkBytes < bytes) want *= 2;
  if (want >= current * 2 || want * 4 <= current) return want;
  return current;
}

async function sealHead(
  aes: CryptoKey,
  manifest: Manifest,
  keyEpoch: number,
  compactions: number,
): Promise<HeadRecord> {
  const v = await sealRecord(aes, headAad(manifest.seq, keyEpoch, compactions), encodeManifest(manifest));
  return { name: HEAD, seq: manifest.seq, keyEpoch, compactions, v };
}

async function sealKeycheck(aes: CryptoKey): Promise<KeycheckRecord> {
  return { name: KEYCHECK, v: await sealRecord(aes, recordAad(META, KEYCHECK), KEYCHECK_PLAINTEXT) };
}

async function verifyKeycheck(aes: CryptoKey, rec: KeycheckRecord): Promise<void> {
  let pt: Uint8Array;
  try {
    pt = await openRecord(aes, recordAad(META, KEYCHECK), rec.v, META);
  } catch {
    throw wrongKey();
  }
  if (pt.length !== KEYCHECK_PLAINTEXT.length || !pt.every((b, i) => b === KEYCHECK_PLAINTEXT[i]))
    throw wrongKey();
}

// ---- loading -------------------------------------------------------------------------------

interface State {
  /** The key-check record (verifies the key of another open in this realm). */
  check: KeycheckRecord;
  tables: Tables;
  seq: number;
  keyEpoch: number;
  compactions: number;
  manifest: Manifest;
  /** Size of each log record after the snapshot, by seq. */
  logSizes: Map<number, number>;
  /** Rows changed since the snapshot. */
  dirty: Dirty;
}

async function openManifest(aes: CryptoKey, head: HeadRecord): Promise<Manifest> {
  const pt = await openRecord(aes, headAad(head.seq, head.keyEpoch, head.compactions), head.v, "head");
  let m: Manifest;
  try {
    m = decodeManifest(pt);
  } catch {
    throw corrupt("bad_record", "the snapshot manifest does not decode");
  }
  if (m.seq !== head.seq) throw corrupt("bad_record", "the snapshot manifest does not match its head");
  return m;
}

function applyPayload(
  tables: Tables,
  payload: Uint8Array,
  onEntry?: (table: TableName, key: string) => void,
): void {
  try {
    decodeEntries(payload, (table, key, row) => {
      const m = tables[table] as Map<string, unknown>;
      if (row === undefined) m.delete(key);
      else m.set(key, row);
      onEntry?.(table, key);
    });
  } catch (e) {
    if (e instanceof RangeError) throw corrupt("bad_record", `a record does not decode (${e.message})`);
    throw e;
  }
}

/** Decrypt log records `recs` (ascending) that follow `after`; throws on a gap. */
async function openLog(aes: CryptoKey, recs: readonly LogRecord[], after: number): Promise<Uint8Array[]> {
  recs.forEach((r, i) => {
    if (r.seq !== after + 1 + i) throw corrupt("log_gap", `log record ${after + 1 + i} is missing`);
  });
  return Promise.all(recs.map((r) => openRecord(aes, logAad(r.seq), r.v, LOG)));
}

/** Everything, from one read-only IndexedDB transaction. `undefined`: a database not yet initialized. */
async function loadState(db: IDBDatabase, aes: CryptoKey): Promise<State | undefined> {
  const tx = db.transaction([META, CHUNKS, LOG], "readonly");
  const meta = tx.objectStore(META);
  const [check, head, chunkRecs, logRecs] = await Promise.all([
    req(meta.get(KEYCHECK) as IDBRequest<KeycheckRecord | undefined>),
    req(meta.get(HEAD) as IDBRequest<HeadRecord | undefined>),
    req(tx.objectStore(CHUNKS).getAll() as IDBRequest<ChunkRecord[]>),
    req(tx.objectStore(LOG).getAll() as IDBRequest<LogRecord[]>),
  ]);
  if (check === undefined) {
    if (head !== undefined || chunkRecs.length > 0 || logRecs.length > 0)
      throw corrupt("missing_keycheck", "the key-check record is missing");
    return undefined;
  }
  await verifyKeycheck(aes, check);
  if (head === undefined) throw corrupt("missing_head", "the head record is missing");
  const manifest = await openManifest(aes, head);
  const byId = new Map(chunkRecs.map((c) => [c.id, c]));
  const chunkJobs: Promise<Uint8Array>[] = [];
  manifest.ids.forEach((id, b) => {
    if (id === 0) return;
    const rec = byId.get(id);
    if (rec === undefined) throw corrupt("missing_chunk", `snapshot chunk ${id} is missing`);
    chunkJobs.push(openRecord(aes, chunkAad(id, b, manifest.buckets), rec.v, CHUNKS));
  });
  const after = logRecs.filter((r) => r.seq > head.seq);
  const [chunks, logs] = await Promise.all([Promise.all(chunkJobs), openLog(aes, after, head.seq)]);
  const tables = emptyTableMaps();
  for (const c of chunks) applyPayload(tables, c);
  const dirty = emptyTableMaps<Dirty>();
  const logSizes = new Map<number, number>();
  logs.forEach((payload, i) => {
    const seq = (after[i] as LogRecord).seq;
    logSizes.set(seq, payload.length);
    applyPayload(tables, payload, (t, k) => dirty[t].set(k, seq));
  });
  return {
    check,
    tables,
    seq: head.seq + logs.length,
    keyEpoch: head.keyEpoch,
    compactions: head.compactions,
    manifest,
    logSizes,
    dirty,
  };
}

/** Create the key check and an empty head; `false` if another connection did it first. */
async function initialize(db: IDBDatabase, aes: CryptoKey): Promise<boolean> {
  const check = await sealKeycheck(aes);
  const head = await sealHead(aes, emptyManifest(), 0, 0);
  const tx = db.transaction([META], "readwrite");
  const meta = tx.objectStore(META);
  meta.add(check);
  meta.add(head);
  try {
    await txDone(tx);
    return true;
  } catch (e) {
    if (errName(e) === "ConstraintError") return false;
    throw idbError("cannot initialize the database", e);
  }
}

// ---- opening and migrating ------------------------------------------------------------------

/** A legacy database read, checked and resealed, ready to be written by the version upgrade. */
interface PreparedMigration {
  /** Ciphertexts per legacy store, in key order: the upgrade refuses if anything changed since. */
  legacy: Map<string, Uint8Array[]>;
  keycheck: KeycheckRecord | undefined;
  head: HeadRecord;
  chunks: ChunkRecord[];
}

const NEEDS_MIGRATION = Symbol("needs migration");
const MIGRATION_RACE = Symbol("legacy database changed");

function createStores(db: IDBDatabase): void {
  if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: "name" });
  db.createObjectStore(LOG, { keyPath: "seq" });
  db.createObjectStore(CHUNKS, { keyPath: "id" });
}

function sameCiphertexts(recs: readonly StoredRecord[], expected: readonly Uint8Array[]): boolean {
  if (recs.length !== expected.length) return false;
  return recs.every((r, i) => {
    const e = expected[i] as Uint8Array;
    return r.v instanceof Uint8Array && r.v.length === e.length && r.v.every((b, j) => b === e[j]);
  });
}

/** Inside the `versionchange` transaction: check the legacy stores, then swap in the snapshot. */
function migrateInUpgrade(
  db: IDBDatabase,
  tx: IDBTransaction,
  prepared: PreparedMigration,
  onRace: () => void,
): void {
  const stores = Array.from(db.objectStoreNames).filter((s) => s !== LOG && s !== CHUNKS);
  let pending = stores.length;
  let same = stores.length === prepared.legacy.size;
  const finish = (): void => {
    if (!same) {
      onRace();
      tx.abort();
      return;
    }
    for (const s of stores) if (s !== META) db.deleteObjectStore(s);
    createStores(db);
    const meta = tx.objectStore(META);
    if (prepared.keycheck !== undefined) meta.put(prepared.keycheck);
    meta.put(prepared.head);
    const chunks = tx.objectStore(CHUNKS);
    for (const c of prepared.chunks) chunks.put(c);
  };
  if (pending === 0) {
    finish();
    return;
  }
  for (const s of stores) {
    const r = tx.objectStore(s).getAll();
    r.onsuccess = () => {
      const expected = prepared.legacy.get(s);
      if (expected === undefined || !sameCiphertexts(r.result as StoredRecord[], expected)) same = false;
      if (--pending === 0) finish();
    };
  }
}

function openCurrent(
  factory: IDBFactory,
  name: string,
  prepared: PreparedMigration | undefined,
): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let outcome: symbol | undefined;
    let r: IDBOpenDBRequest;
    try {
      r = factory.open(name, INDEXEDDB_SCHEMA_VERSION);
    } catch (e) {
      reject(idbError(`cannot open IndexedDB database "${name}"`, e));
      return;
    }
    r.onupgradeneeded = (ev) => {
      const db = r.result;
      const tx = r.transaction as IDBTransaction;
      if (ev.oldVersion === 0) {
        createStores(db);
        return;
      }
      if (prepared === undefined) {
        outcome = NEEDS_MIGRATION;
        tx.abort();
        return;
      }
      migrateInUpgrade(db, tx, prepared, () => {
        outcome = MIGRATION_RACE;
      });
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = (ev) => {
      ev.preventDefault();
      if (outcome !== undefined) reject(outcome);
      else if (errName(r.error) === "VersionError")
        reject(
          new MlsKeypackagesError(
            ErrorCode.SchemaTooNew,
            `IndexedDB database "${name}" has a schema newer than this library (v${INDEXEDDB_SCHEMA_VERSION})`,
            { supported: INDEXEDDB_SCHEMA_VERSION },
          ),
        );
      else reject(idbError(`cannot open IndexedDB database "${name}"`, r.error));
    };
  });
}

/** Read a schema 1–2 database, check the key, reseal everything as a snapshot (nothing written). */
async function prepareMigration(
  factory: IDBFactory,
  name: string,
  aes: CryptoKey,
  chunkBytes: number,
): Promise<PreparedMigration | undefined> {
  const db = await req(factory.open(name));
  try {
    if (db.version >= INDEXEDDB_SCHEMA_VERSION) return undefined; // migrated meanwhile
    const stores = Array.from(db.objectStoreNames);
    if (stores.length === 0) {
      return {
        legacy: new Map(),
        keycheck: await sealKeycheck(aes),
        head: await sealHead(aes, emptyManifest(), 0, 0),
        chunks: [],
      };
    }
    const tx = db.transaction(stores, "readonly");
    const all = await Promise.all(
      stores.map((s) => req(tx.objectStore(s).getAll() as IDBRequest<StoredRecord[]>)),
    );
    const legacy = new Map<string, Uint8Array[]>();
    stores.forEach((s, i) =>
      legacy.set(
        s,
        (all[i] as StoredRecord[]).map((r) => r.v),
      ),
    );
    const meta = (all[stores.indexOf(META)] ?? []) as StoredRecord[];
    const check = meta.find((r) => r.name === KEYCHECK) as KeycheckRecord | undefined;
    if (check !== undefined) await verifyKeycheck(aes, check);
    const keys = { aes, mac: aes } as RecordKeys; // legacy rows only need the AES key to be read
    const tables = emptyTableMaps();
    let bytes = 0;
    await Promise.all(
      stores.map(async (s, i) => {
        if (!(TABLES as readonly string[]).includes(s)) return;
        const table = s as TableName;
        for (const rec of all[i] as StoredRecord[]) {
          const row = await openLegacyRow(keys, table, rec);
          const key = rec[legacyKeyPath(table)] as string;
          (tables[table] as Map<string, unknown>).set(key, row);
          bytes += rec.v.length;
        }
      }),
    );
    const base = emptyManifest();
    const snap = await sealSnapshot(aes, tables, base, bucketCount(1, bytes, chunkBytes), 0, undefined);
    return {
      legacy,
      keycheck: check === undefined ? await sealKeycheck(aes) : undefined,
      head: await sealHead(aes, snap.manifest, 0, 1),
      chunks: snap.chunks,
    };
  } finally {
    db.close();
  }
}

function legacyKeyPath(table: TableName): string {
  return table === "credentials" || table === "conversations"
    ? "id"
    : table === "keypackages"
      ? "ref"
      : table === "kv"
        ? "key"
        : "publicKey";
}

// ---- the keystore --------------------------------------------------------------------------

type Message =
  { t: "want"; from: string } | { t: "commit"; from: string; seq: number } | { t: "rekey"; from: string };

const DEFAULT_COMPACTION: Required<CompactionOptions> = {
  maxLogRecords: 32,
  maxLogBytes: 1 << 20,
  chunkBytes: 64 << 10,
  quietMs: 300,
};

/**
 * This realm's connection to one database: the in-memory state, the IndexedDB connection, the
 * cross-tab lock and channel. Every `IndexedDbKeystore` opened on the same database in the same
 * realm (page, worker) shares one (like two handles on one file), unless opened with `shared: false`.
 */
class Connection {
  readonly name: string;
  readonly #id = Math.random().toString(36).slice(2);
  /** Open handles. */
  refs = 1;
  /** Called once when the connection shuts down (unregisters it). */
  onShutdown: (() => void) | undefined;
  #db: IDBDatabase | undefined;
  #aes: CryptoKey;
  #s: State;
  readonly #lock: SharedLock;
  readonly #channel: BroadcastChannel | undefined;
  readonly #durability: "default" | "strict" | "relaxed";
  readonly #compaction: Required<CompactionOptions> | undefined;
  readonly #chunkBytes: number;
  /** Serializes commits, compaction and rekeying of this connection. */
  #writes: Promise<unknown> = Promise.resolve();
  #stale = false;
  #refreshing: Promise<void> | undefined;
  #compactPending = false;
  #compactTimer: ReturnType<typeof setTimeout> | undefined;
  #compacting: Promise<void> | undefined;
  #failure: MlsKeypackagesError | undefined;

  constructor(db: IDBDatabase, name: string, aes: CryptoKey, state: State, options: IndexedDbOptions) {
    this.#db = db;
    this.name = name;
    this.#aes = aes;
    this.#s = state;
    this.#durability = options.durability ?? "default";
    this.#compaction =
      options.compaction === false ? undefined : { ...DEFAULT_COMPACTION, ...(options.compaction ?? {}) };
    this.#chunkBytes = (options.compaction || undefined)?.chunkBytes ?? DEFAULT_COMPACTION.chunkBytes;
    const BC =
      options.broadcastChannel === null
        ? undefined
        : (options.broadcastChannel ??
          (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel);
    if (BC !== undefined) {
      const ch = new BC(`mls-keypackages/keystore/${name}`);
      ch.onmessage = (ev: MessageEvent) => this.#onMessage(ev.data as Message);
      (ch as { unref?: () => void }).unref?.();
      this.#channel = ch;
    }
    const locks = options.locks === null ? undefined : (options.locks ?? defaultLockManager());
    this.#lock = new SharedLock({
      name: `mls-keypackages/keystore/${name}`,
      locks,
      askHolder: this.#channel === undefined ? undefined : () => this.#post({ t: "want", from: this.#id }),
      idleMs: options.lockIdleMs ?? 30_000,
      onAcquired: () =>
        this.#db === undefined || this.#failure !== undefined ? Promise.resolve() : this.#refresh(),
    });
    // Another connection upgrades the database: step aside rather than block it.
    db.onversionchange = () => {
      db.close();
      this.shutdown();
    };
  }

  /** Shut down or failed: not to be shared with new handles. */
  get unusable(): boolean {
    return this.#db === undefined || this.#failure !== undefined;
  }

  /** Whether `aes` opens this database (checked against the key-check record, no I/O). */
  async accepts(aes: CryptoKey): Promise<boolean> {
    try {
      await verifyKeycheck(aes, this.#s.check);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The lock that serializes transactions on this database across tabs (`Database` takes it
   * for every transaction). Taking it afresh first reads what other tabs committed.
   */
  get transactionLock(): TransactionLock {
    return this.#lock;
  }

  /** Log records not yet compacted, and the snapshot's bucket count (inspection, tests). */
  get stats(): { seq: number; logRecords: number; logBytes: number; buckets: number; compactions: number } {
    let logBytes = 0;
    for (const n of this.#s.logSizes.values()) logBytes += n;
    return {
      seq: this.#s.seq,
      logRecords: this.#s.logSizes.size,
      logBytes,
      buckets: this.#s.manifest.buckets,
      compactions: this.#s.compactions,
    };
  }

  #open(): IDBDatabase {
    if (this.#db === undefined)
      throw new MlsKeypackagesError(ErrorCode.KeystoreClosed, "the keystore is closed");
    if (this.#failure !== undefined) throw this.#failure;
    return this.#db;
  }

  #post(m: Message): void {
    try {
      this.#channel?.postMessage(m);
    } catch {
      // closed channel: nobody to tell
    }
  }

  #onMessage(m: Message): void {
    if (m === null || typeof m !== "object" || m.from === this.#id || this.#db === undefined) return;
    if (m.t === "want") this.#lock.onWant();
    else if (m.t === "commit" && m.seq > this.#s.seq) this.#stale = true;
    else if (m.t === "rekey") this.#stale = true;
  }

  /** Before a read: catch up if another connection said it committed (and we do not hold the lock). */
  async #fresh(): Promise<Tables> {
    this.#open();
    if (this.#stale && !this.#lock.exclusive) await this.#refresh();
    return this.#s.tables;
  }

  /** Read what other connections appended since our last record (single flight). */
  #refresh(): Promise<void> {
    this.#refreshing ??= this.#doRefresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #doRefresh(): Promise<void> {
    const db = this.#open();
    this.#stale = false;
    const s = this.#s;
    let head: HeadRecord | undefined;
    let recs: LogRecord[];
    try {
      const tx = db.transaction([META, LOG], "readonly");
      [head, recs] = await Promise.all([
        req(tx.objectStore(META).get(HEAD) as IDBRequest<HeadRecord | undefined>),
        req(tx.objectStore(LOG).getAll(IDBKeyRange.lowerBound(s.seq, true)) as IDBRequest<LogRecord[]>),
      ]);
    } catch (e) {
      throw idbError("reading the log failed", e);
    }
    if (head === undefined) throw corrupt("missing_head", "the head record is missing");
    if (head.keyEpoch !== s.keyEpoch) {
      this.#failure = new MlsKeypackagesError(
        ErrorCode.WrongDatabaseKey,
        "another connection changed the database key: reopen the database with the new key",
      );
      throw this.#failure;
    }
    if (this.#s !== s) return; // replaced meanwhile (cannot happen under the lock; be safe)
    if (head.seq > s.seq) {
      // Compacted past us by another connection: the records we miss are gone, reload.
      const state = await loadState(db, this.#aes);
      if (state === undefined) throw corrupt("missing_keycheck", "the key-check record is missing");
      this.#s = state;
      return;
    }
    if (head.compactions !== s.compactions) {
      s.manifest = await openManifest(this.#aes, head);
      s.compactions = head.compactions;
      this.#forget(s, head.seq);
    }
    const payloads = await openLog(this.#aes, recs, s.seq);
    payloads.forEach((p, i) => {
      const seq = (recs[i] as LogRecord).seq;
      applyPayload(s.tables, p, (t, k) => s.dirty[t].set(k, seq));
      s.logSizes.set(seq, p.length);
      s.seq = seq;
    });
  }

  /** The snapshot now covers everything up to `seq`. */
  #forget(s: State, seq: number): void {
    for (const table of TABLES) {
      const m = s.dirty[table];
      for (const [k, changed] of m) if (changed <= seq) m.delete(k);
    }
    for (const k of s.logSizes.keys()) if (k <= seq) s.logSizes.delete(k);
  }

  /** Run `fn` holding the transaction lock (unless a caller of ours holds it) and the write queue. */
  async #write<T>(fn: () => Promise<T>): Promise<T> {
    const release = this.#lock.active ? undefined : await this.#lock.acquire();
    try {
      const run = this.#writes.then(fn, fn);
      this.#writes = run.catch(() => undefined);
      return await run;
    } finally {
      release?.();
    }
  }

  // ---- reads ----

  async get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined> {
    const t = await this.#fresh();
    return (t[table] as Map<string, RowOf[T]>).get(key);
  }

  async all<T extends TableName>(table: T): Promise<RowOf[T][]> {
    const t = await this.#fresh();
    return [...(t[table] as Map<string, RowOf[T]>).values()];
  }

  async listKeypackageMeta(): Promise<KeypackageMeta[]> {
    const t = await this.#fresh();
    return [...t.keypackages.values()].map(keypackageMetaOf);
  }

  async keypackageRefsForCredential(credentialId: string): Promise<string[]> {
    const t = await this.#fresh();
    const out: string[] = [];
    for (const [k, r] of t.keypackages) if (r.credentialId === credentialId) out.push(k);
    return out;
  }

  async conversationsForCredential(credentialId: string): Promise<string[]> {
    const t = await this.#fresh();
    const out: string[] = [];
    for (const [k, r] of t.conversations) if (r.credentialId === credentialId) out.push(k);
    return out;
  }

  async counts(): Promise<RowCounts> {
    const t = await this.#fresh();
    const c = {} as RowCounts;
    for (const table of TABLES) c[table] = t[table].size;
    return c;
  }

  // ---- commit ----

  /** The row changes `ops` make to the current state; throws `AlreadyExists` on a conflicting insert. */
  #plan(ops: readonly StagedOp[]): Entry[] {
    const tables = this.#s.tables;
    // The last op on each row wins; rows keyed per table (no table|key string per op).
    const overlay = new Map<TableName, Map<string, Entry & { noop: boolean }>>();
    for (const op of ops) {
      let rows = overlay.get(op.table);
      if (rows === undefined) overlay.set(op.table, (rows = new Map()));
      const staged = rows.get(op.key);
      if (op.kind === "delete") {
        rows.set(op.key, { table: op.table, key: op.key, row: undefined, noop: false });
        continue;
      }
      let noop = false;
      if (op.kind === "insert" || INSERT_ONLY.has(op.table)) {
        const existing =
          staged !== undefined ? staged.row : (tables[op.table] as Map<string, unknown>).get(op.key);
        if (existing !== undefined) {
          if (!rowsEqual(existing, op.row))
            throw new MlsKeypackagesError(
              ErrorCode.AlreadyExists,
              `a different row already exists in ${op.table} under this key`,
              { table: op.table },
            );
          // Same value again: nothing to write if it is the committed one.
          noop = staged === undefined || staged.noop;
        }
      }
      rows.set(op.key, { table: op.table, key: op.key, row: op.row, noop });
    }
    const out: Entry[] = [];
    for (const [table, rows] of overlay) {
      const current = tables[table] as Map<string, unknown>;
      for (const e of rows.values()) {
        if (e.noop) continue;
        if (e.row === undefined && !current.has(e.key)) continue;
        out.push({ table: e.table, key: e.key, row: e.row });
      }
    }
    return out;
  }

  async commit(ops: readonly StagedOp[]): Promise<void> {
    this.#open();
    if (ops.length === 0) return;
    await this.#write(async () => {
      // Another tab said it committed and we do not hold the lock: catch up before validating.
      // (Without Web Locks a stale state is caught by `#append`, which then refreshes and retries.)
      if (this.#stale && !this.#lock.exclusive) await this.#refresh();
      for (let attempt = 0; ; attempt++) {
        const entries = this.#plan(ops);
        if (entries.length === 0) return;
        const s = this.#s;
        const seq = s.seq + 1;
        const plaintext = encodeEntries(entries);
        let v: Uint8Array;
        try {
          v = await sealRecord(this.#aes, logAad(seq), plaintext);
        } finally {
          plaintext.fill(0);
        }
        if (await this.#append(s, { seq, v })) {
          for (const e of entries) {
            const m = s.tables[e.table] as Map<string, unknown>;
            if (e.row === undefined) m.delete(e.key);
            else m.set(e.key, e.row);
            s.dirty[e.table].set(e.key, seq);
          }
          s.seq = seq;
          s.logSizes.set(seq, v.length);
          this.#post({ t: "commit", from: this.#id, seq });
          // A reload replaced the state while we appended (only without Web Locks): read our record back.
          while (this.#s !== s && this.#s.seq < seq) await this.#refresh();
          this.#maybeCompact();
          return;
        }
        if (attempt >= 20)
          throw new MlsKeypackagesError(ErrorCode.KeystoreError, "commit failed: the log kept changing");
        await this.#refresh();
      }
    });
  }

  /**
   * Append one log record in one read-write transaction that also checks nobody appended or
   * rekeyed since `s`. `false`: someone did (catch up and retry).
   */
  async #append(s: State, rec: LogRecord): Promise<boolean> {
    const db = this.#open();
    // Holding the Web Lock, nobody else appends, compacts or rekeys: the record's key is enough.
    const checkHead = !this.#lock.exclusive;
    let lost = false;
    let tx: IDBTransaction;
    try {
      tx = db.transaction(checkHead ? [META, LOG] : [LOG], "readwrite", { durability: this.#durability });
    } catch (e) {
      throw idbError("commit failed", e);
    }
    const done = txDone(tx);
    if (checkHead) {
      const headReq = tx.objectStore(META).get(HEAD) as IDBRequest<HeadRecord | undefined>;
      headReq.onsuccess = () => {
        const h = headReq.result;
        if (h === undefined || h.keyEpoch !== s.keyEpoch || h.seq >= rec.seq) {
          lost = true;
          tx.abort();
        }
      };
    }
    tx.objectStore(LOG).add(rec).onerror = (ev) => {
      if (errName((ev.target as IDBRequest).error) === "ConstraintError") lost = true;
    };
    // Nothing more to ask (holding the lock, no head check that might abort): commit now rather
    // than after the add's success event reached this thread (one round trip less; a failed add
    // still aborts the transaction).
    if (!checkHead) (tx as { commit?: () => void }).commit?.();
    try {
      await done;
      return true;
    } catch (e) {
      if (lost) return false;
      throw idbError("commit failed", e);
    }
  }

  // ---- compaction ----

  /**
   * Schedule a compaction once the log is past its limits: after `quietMs` without a commit and
   * when the page is idle, so it does not compete with a burst of transactions. Past 4× the limits
   * it no longer waits for a quiet moment.
   */
  #maybeCompact(): void {
    const c = this.#compaction;
    if (c === undefined || this.#compactPending) return;
    const st = this.stats;
    if (st.logRecords < c.maxLogRecords && st.logBytes < c.maxLogBytes) return;
    const overdue = st.logRecords >= 4 * c.maxLogRecords || st.logBytes >= 4 * c.maxLogBytes;
    if (this.#compactTimer !== undefined) {
      clearTimeout(this.#compactTimer);
      this.#compactTimer = undefined;
    }
    const run = (): void => {
      // A transaction is running: try again after it.
      if (this.#lock.active && !overdue) return this.#maybeCompactLater(c.quietMs);
      this.#compactPending = true;
      this.compact()
        .catch(() => undefined) // retried after a later commit; the log stays valid meanwhile
        .finally(() => {
          this.#compactPending = false;
        });
    };
    const onIdle = (): void => {
      this.#compactTimer = undefined;
      const idle = (globalThis as { requestIdleCallback?: (cb: () => void, o: { timeout: number }) => void })
        .requestIdleCallback;
      if (typeof idle === "function") idle(run, { timeout: 500 });
      else run();
    };
    if (overdue) onIdle();
    else this.#compactTimer = unrefTimer(setTimeout(onIdle, c.quietMs));
  }

  #maybeCompactLater(ms: number): void {
    if (this.#compactTimer !== undefined || this.#db === undefined) return;
    this.#compactTimer = unrefTimer(
      setTimeout(() => {
        this.#compactTimer = undefined;
        this.#maybeCompact();
      }, ms),
    );
  }

  /**
   * Fold the log into the snapshot: rewrite the buckets whose rows changed, delete the log
   * records the snapshot now covers. One IndexedDB transaction: a crash leaves the old state.
   * It changes no row, so it takes no lock: commits go on meanwhile (their records stay in the
   * log), and if another tab compacted or rekeyed first, the IndexedDB transaction notices.
   */
  async compact(): Promise<void> {
    if (this.#db === undefined) return;
    await this.#compacting?.catch(() => undefined);
    const run = this.#rewrite(undefined).finally(() => {
      if (this.#compacting === run) this.#compacting = undefined;
    });
    this.#compacting = run;
    return run;
  }

  /** Delete the log records a snapshot covers (left over by a crash: ignored, deleted next time). */
  async #dropLog(seq: number): Promise<void> {
    try {
      const tx = this.#open().transaction([LOG], "readwrite", { durability: this.#durability });
      tx.objectStore(LOG).delete(IDBKeyRange.upperBound(seq));
      await txDone(tx);
    } catch {
      // closed, or failed: the records stay ignored until the next compaction deletes them
    }
  }

  /** Re-encrypt everything under `key` (a full snapshot, the log emptied) in one transaction. */
  async updateKey(key: DatabaseKey): Promise<void> {
    this.#open();
    const aes = await deriveAesKey(key);
    await this.#write(async () => {
      if (this.#stale && !this.#lock.exclusive) await this.#refresh();
      await this.#rewrite(aes);
    });
    this.#post({ t: "rekey", from: this.#id });
  }

  /** Compaction (`newKey` undefined) or rekeying. */
  async #rewrite(newKey: CryptoKey | undefined): Promise<void> {
    const rekey = newKey !== undefined;
    for (let attempt = 0; ; attempt++) {
      if (this.#db === undefined && !rekey) return;
      const db = this.#open();
      // Everything read and encoded synchronously, at one sequence number; sealing comes after.
      const s = this.#s;
      const seq = s.seq;
      const base = { manifest: s.manifest, keyEpoch: s.keyEpoch, compactions: s.compactions };
      const aes = newKey ?? this.#aes;
      const bytesNow = base.manifest.sizes.reduce((a, b) => a + b, 0) + this.stats.logBytes;
      const buckets = bucketCount(base.manifest.buckets, bytesNow, this.#chunkBytes);
      let dirty: Set<number> | undefined;
      if (!rekey) {
        dirty = new Set();
        for (const t of TABLES)
          for (const k of s.dirty[t].keys()) dirty.add(bucketHash(t, k) & (buckets - 1));
        if (dirty.size === 0 && s.logSizes.size === 0 && buckets === base.manifest.buckets) return;
      }
      const snap = await sealSnapshot(aes, s.tables, base.manifest, buckets, seq, dirty, !rekey);
      const keyEpoch = rekey ? base.keyEpoch + 1 : base.keyEpoch;
      const head = await sealHead(aes, snap.manifest, keyEpoch, base.compactions + 1);
      const check = rekey ? await sealKeycheck(aes) : undefined;

      // A compaction leaves the log alone (records up to `seq` are ignored once the head says so;
      // they are deleted afterwards), so it never holds up an append. A rekey empties it.
      let tx: IDBTransaction;
      try {
        tx = db.transaction(rekey ? [META, CHUNKS, LOG] : [META, CHUNKS], "readwrite", {
          durability: this.#durability,
        });
      } catch (e) {
        if (this.#db === undefined && !rekey) return; // closed meanwhile
        throw idbError(rekey ? "rekeying failed" : "compaction failed", e);
      }
      const done = txDone(tx);
      let lost = false;
      const meta = tx.objectStore(META);
      const chunks = tx.objectStore(CHUNKS);
      const headReq = meta.get(HEAD) as IDBRequest<HeadRecord | undefined>;
      headReq.onsuccess = () => {
        const h = headReq.result;
        if (h === undefined || h.keyEpoch !== base.keyEpoch || h.compactions !== base.compactions) {
          lost = true;
          tx.abort();
        }
      };
      // Records after `seq` would be sealed under the old key: a rekey must cover everything.
      if (rekey) {
        const log = tx.objectStore(LOG);
        log.delete(IDBKeyRange.upperBound(seq));
        const later = log.count(IDBKeyRange.lowerBound(seq, true));
        later.onsuccess = () => {
          if (later.result > 0) {
            lost = true;
            tx.abort();
          }
        };
      }
      if (rekey) chunks.clear();
      else for (const id of snap.removed) chunks.delete(id);
      for (const c of snap.chunks) chunks.put(c);
      meta.put(head);
      if (check !== undefined) meta.put(check);
      try {
        await done;
      } catch (e) {
        if (!lost) throw idbError(rekey ? "rekeying failed" : "compaction failed", e);
        if (attempt >= 5)
          throw new MlsKeypackagesError(ErrorCode.KeystoreError, "the database kept changing");
        await this.#refresh();
        continue;
      }
      const moved = this.#s !== s || s.compactions !== base.compactions || s.keyEpoch !== base.keyEpoch;
      if (rekey) {
        this.#aes = newKey;
        for (const st of new Set([s, this.#s])) {
          st.keyEpoch = keyEpoch;
          st.check = check as KeycheckRecord;
        }
      }
      if (moved) {
        // Our view moved on meanwhile (a reload, only without Web Locks): read the new head.
        await this.#refresh().catch(() => undefined);
      } else {
        s.manifest = snap.manifest;
        s.compactions = base.compactions + 1;
        this.#forget(s, seq);
      }
      if (!rekey) await this.#dropLog(seq);
      return;
    }
  }

  shutdown(): void {
    const db = this.#db;
    if (db === undefined) return;
    this.#db = undefined;
    if (this.#compactTimer !== undefined) clearTimeout(this.#compactTimer);
    this.#compactTimer = undefined;
    this.#lock.close();
    this.#channel?.close();
    db.close();
    this.onShutdown?.();
  }

  /** Catch up now (a rekey by another tab shows up as `unusable`). */
  async check(): Promise<void> {
    await this.#refresh();
  }
}

/**
 * The IndexedDB keystore: a handle on this realm's connection to the database (see
 * `Connection`). Closing it closes the connection once no other handle uses it.
 */
export class IndexedDbKeystore implements Keystore {
  readonly backend = "indexeddb";
  readonly name: string;
  #c: Connection | undefined;

  /** @internal use `openIndexedDbKeystore`. */
  constructor(connection: Connection) {
    this.#c = connection;
    this.name = connection.name;
  }

  #conn(): Connection {
    if (this.#c === undefined)
      throw new MlsKeypackagesError(ErrorCode.KeystoreClosed, "the keystore is closed");
    return this.#c;
  }

  /**
   * The lock that serializes transactions on this database across tabs (`Database` takes it
   * for every transaction). Taking it afresh first reads what other tabs committed.
   */
  get transactionLock(): TransactionLock {
    return this.#conn().transactionLock;
  }

  /** Log records not yet compacted, the snapshot's bucket count (inspection, tests). */
  get stats(): { seq: number; logRecords: number; logBytes: number; buckets: number; compactions: number } {
    return this.#conn().stats;
  }

  get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined> {
    return this.#run((c) => c.get(table, key));
  }
  all<T extends TableName>(table: T): Promise<RowOf[T][]> {
    return this.#run((c) => c.all(table));
  }
  listKeypackageMeta(): Promise<KeypackageMeta[]> {
    return this.#run((c) => c.listKeypackageMeta());
  }
  keypackageRefsForCredential(credentialId: string): Promise<string[]> {
    return this.#run((c) => c.keypackageRefsForCredential(credentialId));
  }
  conversationsForCredential(credentialId: string): Promise<string[]> {
    return this.#run((c) => c.conversationsForCredential(credentialId));
  }
  counts(): Promise<RowCounts> {
    return this.#run((c) => c.counts());
  }
  commit(ops: readonly StagedOp[]): Promise<void> {
    return this.#run((c) => c.commit(ops));
  }
  /** Fold the log into the snapshot now (it also happens by itself as the log grows). */
  compact(): Promise<void> {
    return this.#run((c) => c.compact());
  }
  /** Re-encrypt everything under `key`; afterwards only `key` opens the database. */
  updateKey(key: DatabaseKey): Promise<void> {
    return this.#run((c) => c.updateKey(key));
  }

  async #run<T>(fn: (c: Connection) => Promise<T>): Promise<T> {
    return fn(this.#conn());
  }

  async close(): Promise<void> {
    const c = this.#c;
    if (c === undefined) return;
    this.#c = undefined;
    if (--c.refs === 0) c.shutdown();
  }
}

/** This realm's shared connections, by factory and database name. */
const connections = new WeakMap<IDBFactory, Map<string, { pending: Promise<Connection> }>>();

/**
 * Open (or create) the encrypted IndexedDB keystore `name`. Throws `WrongDatabaseKey` when `key`
 * does not match the one the database was created with, `SchemaTooNew` for a newer schema,
 * `CorruptDatabase` when records are missing or do not decode. A database of the per-row format
 * (schema 1–2) is migrated to the commit log in one version upgrade (atomic) on first open.
 */
export async function openIndexedDbKeystore(
  name: string,
  key: DatabaseKey,
  options: IndexedDbOptions = {},
): Promise<IndexedDbKeystore> {
  const factory = options.indexedDB ?? globalThis.indexedDB;
  if (factory === undefined)
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "IndexedDB is not available here");
  const aes = await deriveAesKey(key);
  if (options.shared === false) return new IndexedDbKeystore(await connect(factory, name, aes, options));
  let byName = connections.get(factory);
  if (byName === undefined) connections.set(factory, (byName = new Map()));
  for (;;) {
    const entry = byName.get(name);
    if (entry === undefined) break;
    const c = await entry.pending.catch(() => undefined);
    if (byName.get(name) !== entry) continue; // replaced meanwhile
    if (c === undefined || c.unusable) {
      byName.delete(name);
      break;
    }
    if (!(await c.accepts(aes))) {
      // Maybe another tab changed the key and this connection has not noticed yet.
      await c.check().catch(() => undefined);
      if (!c.unusable) throw wrongKey();
      continue;
    }
    if (c.unusable) continue;
    c.refs++;
    return new IndexedDbKeystore(c);
  }
  const entry = { pending: connect(factory, name, aes, options) };
  const registry = byName;
  registry.set(name, entry);
  try {
    const c = await entry.pending;
    c.onShutdown = () => {
      if (registry.get(name) === entry) registry.delete(name);
    };
    return new IndexedDbKeystore(c);
  } catch (e) {
    if (registry.get(name) === entry) registry.delete(name);
    throw e;
  }
}

async function connect(
  factory: IDBFactory,
  name: string,
  aes: CryptoKey,
  options: IndexedDbOptions,
): Promise<Connection> {
  const chunkBytes = (options.compaction || undefined)?.chunkBytes ?? DEFAULT_COMPACTION.chunkBytes;
  let prepared: PreparedMigration | undefined;
  let db: IDBDatabase | undefined;
  for (let attempt = 0; db === undefined; attempt++) {
    try {
      db = await openCurrent(factory, name, prepared);
    } catch (e) {
      if ((e !== NEEDS_MIGRATION && e !== MIGRATION_RACE) || attempt >= 5) {
        if (typeof e === "symbol")
          throw new MlsKeypackagesError(
            ErrorCode.KeystoreError,
            `cannot migrate IndexedDB database "${name}"`,
          );
        throw e;
      }
      try {
        prepared = await prepareMigration(factory, name, aes, chunkBytes);
      } catch (err) {
        if (err instanceof MlsKeypackagesError) throw err;
        throw idbError(`cannot read IndexedDB database "${name}" (schema ≤ ${LEGACY_SCHEMA_VERSION})`, err);
      }
    }
  }
  try {
    let state = await loadState(db, aes);
    if (state === undefined) {
      await initialize(db, aes);
      state = await loadState(db, aes);
      if (state === undefined) throw corrupt("missing_keycheck", "the key-check record is missing");
    }
    return new Connection(db, name, aes, state, options);
  } catch (e) {
    db.close();
    if (e instanceof MlsKeypackagesError) throw e;
    throw idbError(`cannot open IndexedDB database "${name}"`, e);
  }
}

export { RecordDecryptionError };
