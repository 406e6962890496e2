/**
 * The IndexedDB format before the commit log (schema versions 1 and 2): one object store per
 * table, key package metadata in clear indexed fields, everything else of a row one AES-256-GCM
 * ciphertext `v` with additional data `table || 0x00 || primary key`, insert-only rows with an
 * HMAC `h`. Kept to migrate such databases (indexeddb.ts reads them once and rewrites them as a
 * snapshot) and so that tests can build one.
 */
import { keypackageMetaOf, type KeypackageMeta, type RowOf, type TableName } from "./contract.js";
import { macRecord, openRecord, recordAad, sealRecord, type RecordKeys } from "./encryption.js";

/** The last schema version of this format. */
export const LEGACY_SCHEMA_VERSION = 2;
/** Store of the key-check record (kept by the commit-log format). */
export const LEGACY_META = "meta";

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
    clear: (key, r) => ({ ...keypackageMetaOf(r), ref: key }),
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
export async function sealLegacyRow<T extends TableName>(
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

export async function openLegacyRow<T extends TableName>(
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

// ---- schema -----------------------------------------------------------------------------

/**
 * Schema steps, run inside the `versionchange` transaction. v1: one store per table + `meta`;
 * v2: `lastResort` on key packages (clear field, defaults to false) and an index on
 * conversations' credential id. Exported so tests can build an old database.
 */
export function upgradeLegacySchema(
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
    db.createObjectStore(LEGACY_META, { keyPath: "name" });
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
