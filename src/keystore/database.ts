import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { AsyncMutex } from "../transaction/mutex.js";
import type { Keystore, RowCounts } from "./contract.js";
import type { DatabaseKey } from "./databaseKey.js";
import { MemoryKeystore } from "./memory.js";

/** A keystore backend that can re-encrypt itself under a new key. */
export interface RekeyableKeystore extends Keystore {
  updateKey(key: DatabaseKey): Promise<void>;
}

function isRekeyable(ks: Keystore): ks is RekeyableKeystore {
  return typeof (ks as Partial<RekeyableKeystore>).updateKey === "function";
}

/** Opens a persistent keystore; registered by the platform entry (SQLite in Node, IndexedDB in browsers). */
export type KeystoreOpener = (location: string, key: DatabaseKey) => Promise<Keystore>;

let persistentOpener: KeystoreOpener | undefined;

/** Set the backend behind `Database.open` (done automatically; exposed for custom backends). */
export function registerPersistentKeystore(opener: KeystoreOpener): void {
  persistentOpener = opener;
}

const isNode = typeof process !== "undefined" && process.versions?.node !== undefined;

async function defaultOpener(): Promise<KeystoreOpener> {
  if (persistentOpener) return persistentOpener;
  if (isNode) {
    // Non-literal specifier: bundlers for the browser never follow it.
    const spec = "./sqlite.js";
    const mod = (await import(/* @vite-ignore */ spec)) as { openSqliteKeystore: KeystoreOpener };
    return mod.openSqliteKeystore;
  }
  const mod = await import("./indexeddb.js");
  return mod.openIndexedDbKeystore;
}

/**
 * The database a session runs on. One transaction at a time per database:
 * `newTransaction()` on a second context waits until the first one ends.
 */
export class Database {
  readonly keystore: Keystore;
  /**
   * @internal serializes transactions on this database. A keystore shared with other contexts
   * (the IndexedDB keystore: other tabs) provides its own `transactionLock`.
   */
  readonly lock: { acquire(): Promise<() => void> };

  private constructor(keystore: Keystore) {
    this.keystore = keystore;
    const shared = (keystore as { transactionLock?: { acquire(): Promise<() => void> } }).transactionLock;
    this.lock = shared ?? new AsyncMutex();
  }

  /** A database that lives in memory only: never persisted, never encrypted. */
  static async inMemory(): Promise<Database> {
    return new Database(new MemoryKeystore());
  }

  /**
   * Open (or create) an encrypted persistent database: an SQLCipher-encrypted SQLite file
   * at `location` under Node.js, an IndexedDB database named `location` in browsers.
   * Throws `WrongDatabaseKey` when `key` does not open an existing database.
   */
  static async open(location: string, key: DatabaseKey): Promise<Database> {
    const opener = await defaultOpener();
    return new Database(await opener(location, key));
  }

  /** Wrap any backend that follows the `Keystore` contract. */
  static fromKeystore(keystore: Keystore): Database {
    return new Database(keystore);
  }

  /** Re-encrypt the database under `key`; afterwards only `key` opens it. */
  async updateKey(key: DatabaseKey): Promise<void> {
    if (!isRekeyable(this.keystore)) {
      throw new MlsKeypackagesError(
        ErrorCode.KeystoreError,
        `the ${this.keystore.backend} keystore is not encrypted`,
      );
    }
    const release = await this.lock.acquire();
    try {
      await this.keystore.updateKey(key);
    } finally {
      release();
    }
  }

  /** Committed row count per table (inspection). */
  counts(): Promise<RowCounts> {
    return this.keystore.counts();
  }

  async close(): Promise<void> {
    const release = await this.lock.acquire();
    try {
      await this.keystore.close();
    } finally {
      release();
    }
  }
}
