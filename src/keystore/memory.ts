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

/** In-memory keystore: nothing persists, nothing is encrypted. For tests and ephemeral clients. */
/** Overlay marker for a row deleted by the commit being applied. */
const DELETED: unique symbol = Symbol("deleted");

export class MemoryKeystore implements Keystore {
  readonly backend = "memory";
  #tables: Tables = emptyTableMaps();
  #closed = false;

  #check(): void {
    if (this.#closed) throw new MlsKeypackagesError(ErrorCode.KeystoreClosed, "the keystore is closed");
  }

  async get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined> {
    this.#check();
    // Rows are shared, not copied: the contract makes them read-only.
    return (this.#tables[table] as Map<string, RowOf[T]>).get(key);
  }

  async all<T extends TableName>(table: T): Promise<RowOf[T][]> {
    this.#check();
    return [...(this.#tables[table] as Map<string, RowOf[T]>).values()];
  }

  async listKeypackageMeta(): Promise<KeypackageMeta[]> {
    this.#check();
    return [...this.#tables.keypackages.values()].map(keypackageMetaOf);
  }

  async keypackageRefsForCredential(credentialId: string): Promise<string[]> {
    this.#check();
    const out: string[] = [];
    for (const r of this.#tables.keypackages.values()) if (r.credentialId === credentialId) out.push(r.ref);
    return out;
  }

  async conversationsForCredential(credentialId: string): Promise<string[]> {
    this.#check();
    const out: string[] = [];
    for (const [k, r] of this.#tables.conversations) if (r.credentialId === credentialId) out.push(k);
    return out;
  }

  async counts(): Promise<RowCounts> {
    this.#check();
    const c = {} as RowCounts;
    for (const t of TABLES) c[t] = this.#tables[t].size;
    return c;
  }

  async commit(ops: readonly StagedOp[]): Promise<void> {
    this.#check();
    // Two passes, all or nothing: resolve every op into an overlay of the touched keys (this is
    // where a conflict throws, before anything changed), then apply the overlay, which cannot fail.
    const overlay = new Map<TableName, Map<string, unknown>>();
    for (const op of ops) {
      let m = overlay.get(op.table);
      if (m === undefined) overlay.set(op.table, (m = new Map()));
      if (op.kind === "delete") {
        m.set(op.key, DELETED);
        continue;
      }
      if (op.kind === "insert" || INSERT_ONLY.has(op.table)) {
        const staged = m.get(op.key);
        const existing =
          staged === DELETED
            ? undefined
            : (staged ?? (this.#tables[op.table] as Map<string, unknown>).get(op.key));
        if (existing !== undefined && !rowsEqual(existing, op.row)) {
          throw new MlsKeypackagesError(
            ErrorCode.AlreadyExists,
            `a different row already exists in ${op.table} under this key`,
            { table: op.table },
          );
        }
      }
      // Staged rows are owned by the transaction and never mutated after staging: no copy needed.
      m.set(op.key, op.row);
    }
    for (const [t, m] of overlay) {
      const table = this.#tables[t] as Map<string, unknown>;
      for (const [k, row] of m) {
        if (row === DELETED) table.delete(k);
        else table.set(k, row);
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
