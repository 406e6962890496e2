/**
 * Keeping a `DatabaseKey` in a browser without storing it: the 32 key bytes are sealed
 * (AES-256-GCM) under a WebCrypto key generated as non-extractable, and both — the
 * `CryptoKey` object and the sealed bytes — are stored in an IndexedDB database of their own
 * (default name `mls-keypackages-keys`). Script in the origin can ask the browser to unseal the
 * key, but nothing, not even that script, can read the wrapping key's bytes, so copying the stored
 * records out of the page is useless on its own.
 *
 *   const key = await loadOrCreateWrappedDatabaseKey("mls-keystore");
 *   const db = await Database.open("mls-keystore", key);
 *
 * See docs/keystore.md ("The database key in a browser") for what this does and does not protect.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { DatabaseKey } from "./databaseKey.js";

export interface WrappedKeyOptions {
  /** The IndexedDB factory (default: `globalThis.indexedDB`). */
  indexedDB?: IDBFactory;
  /** IndexedDB database that holds the wrapped keys (default `mls-keypackages-keys`). */
  databaseName?: string;
}

const DEFAULT_DB = "mls-keypackages-keys";
const STORE = "keys";
const NONCE_BYTES = 12;
const encoder = new TextEncoder();

/** What is stored under a name: the non-extractable wrapping key and the sealed database key. */
interface WrappedKeyRecord {
  name: string;
  version: 1;
  wrappingKey: CryptoKey;
  /** nonce (12) ‖ AES-256-GCM(database key) ‖ tag (16); additional data = label ‖ name. */
  wrapped: Uint8Array;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (s === undefined)
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "WebCrypto (crypto.subtle) is not available");
  return s;
}

function aadFor(name: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`mls-keypackages/wrapped-database-key/v1\u0000${name}`);
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function keyError(message: string, cause?: unknown): MlsKeypackagesError {
  return new MlsKeypackagesError(
    ErrorCode.KeystoreError,
    message,
    {},
    cause === undefined ? undefined : { cause },
  );
}

async function openKeyDb(options: WrappedKeyOptions): Promise<IDBDatabase> {
  const factory = options.indexedDB ?? globalThis.indexedDB;
  if (factory === undefined) throw keyError("IndexedDB is not available here");
  const r = factory.open(options.databaseName ?? DEFAULT_DB, 1);
  r.onupgradeneeded = () => {
    r.result.createObjectStore(STORE, { keyPath: "name" });
  };
  try {
    return await request(r);
  } catch (e) {
    throw keyError("cannot open the wrapped-key database", e);
  }
}

async function seal(name: string, key: DatabaseKey): Promise<WrappedKeyRecord> {
  const wrappingKey = await subtle().generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const raw = key.bytes() as Uint8Array<ArrayBuffer>;
  try {
    const ct = new Uint8Array(
      await subtle().encrypt({ name: "AES-GCM", iv: nonce, additionalData: aadFor(name) }, wrappingKey, raw),
    );
    const wrapped = new Uint8Array(NONCE_BYTES + ct.length);
    wrapped.set(nonce, 0);
    wrapped.set(ct, NONCE_BYTES);
    return { name, version: 1, wrappingKey, wrapped };
  } finally {
    raw.fill(0);
  }
}

async function unseal(rec: WrappedKeyRecord): Promise<DatabaseKey> {
  if (rec.version !== 1 || !(rec.wrapped instanceof Uint8Array) || rec.wrapped.length < NONCE_BYTES + 16)
    throw keyError(`the wrapped key "${rec.name}" has an unknown format`);
  let raw: Uint8Array;
  try {
    raw = new Uint8Array(
      await subtle().decrypt(
        { name: "AES-GCM", iv: rec.wrapped.slice(0, NONCE_BYTES), additionalData: aadFor(rec.name) },
        rec.wrappingKey,
        rec.wrapped.slice(NONCE_BYTES),
      ),
    );
  } catch (e) {
    throw keyError(`the wrapped key "${rec.name}" does not unwrap (damaged or moved record)`, e);
  }
  try {
    return new DatabaseKey(raw);
  } finally {
    raw.fill(0);
  }
}

/** The key stored under `name`, or `undefined` when there is none. */
export async function loadWrappedDatabaseKey(
  name: string,
  options: WrappedKeyOptions = {},
): Promise<DatabaseKey | undefined> {
  const db = await openKeyDb(options);
  try {
    const rec = (await request(db.transaction(STORE).objectStore(STORE).get(name))) as
      WrappedKeyRecord | undefined;
    return rec === undefined ? undefined : await unseal(rec);
  } finally {
    db.close();
  }
}

/**
 * Store `key` under `name`, wrapped by a fresh non-extractable key; replaces what was there (for
 * example after `Database.updateKey(key)`). The raw bytes are not stored.
 */
export async function storeWrappedDatabaseKey(
  name: string,
  key: DatabaseKey,
  options: WrappedKeyOptions = {},
): Promise<void> {
  const rec = await seal(name, key);
  const db = await openKeyDb(options);
  try {
    await request(db.transaction(STORE, "readwrite").objectStore(STORE).put(rec));
  } catch (e) {
    throw keyError("cannot store the wrapped key", e);
  } finally {
    db.close();
  }
}

/**
 * The key stored under `name`; on first use a new random key, stored wrapped. Tabs racing to
 * create it all get the same key (the first one stored wins).
 */
export async function loadOrCreateWrappedDatabaseKey(
  name: string,
  options: WrappedKeyOptions = {},
): Promise<DatabaseKey> {
  const existing = await loadWrappedDatabaseKey(name, options);
  if (existing !== undefined) return existing;
  const fresh = DatabaseKey.generate();
  const rec = await seal(name, fresh);
  const db = await openKeyDb(options);
  try {
    await request(db.transaction(STORE, "readwrite").objectStore(STORE).add(rec));
    return fresh;
  } catch (e) {
    if ((e as { name?: unknown } | null)?.name !== "ConstraintError")
      throw keyError("cannot store the wrapped key", e);
  } finally {
    db.close();
  }
  const winner = await loadWrappedDatabaseKey(name, options);
  if (winner === undefined) throw keyError(`the wrapped key "${name}" vanished`);
  return winner;
}

/** Forget the key stored under `name` (the data it encrypts becomes unreadable for good). */
export async function deleteWrappedDatabaseKey(name: string, options: WrappedKeyOptions = {}): Promise<void> {
  const db = await openKeyDb(options);
  try {
    await request(db.transaction(STORE, "readwrite").objectStore(STORE).delete(name));
  } finally {
    db.close();
  }
}
