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
} from "./contract.js";

type Tables = { [T in TableName]: Map<string, RowOf[T]> };

function emptyTables(): Tables {
  return {
    credentials: new Map(),
    keypackages: new Map(),
    hpke_private_keys: new Map(),
    encryption_keypairs: new Map(),
    conversations: new Map(),
    kv: new Map(),
  };
}

/** In-memory keystore: nothing persists, nothing is encrypted. For tests and ephemeral clients. */
export class MemoryKeystore implements Keystore {
  readonly backend = "memory";
  #tables: Tables = emptyTables();
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
    return [...this.#tables.keypackages.values()].map((r) => ({
      ref: r.ref,
      credentialId: r.credentialId,
      ciphersuite: r.ciphersuite,
      credentialType: r.credentialType,
      notBefore: r.notBefore,
      notAfter: r.notAfter,
      lastResort: r.lastResort,
    }));
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
    // Apply to a copy-on-write view of touched tables, then swap: all or nothing.
    const next: Partial<Record<TableName, Map<string, unknown>>> = {};
    const table = (t: TableName): Map<string, unknown> =>
      (next[t] ??= new Map(this.#tables[t] as Map<string, unknown>));
    for (const op of ops) {
      const m = table(op.table);
      if (op.kind === "delete") {
        m.delete(op.key);
        continue;
      }
      if (op.kind === "insert" || INSERT_ONLY.has(op.table)) {
        const existing = m.get(op.key);
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
    for (const [t, m] of Object.entries(next) as [TableName, Map<string, unknown>][]) {
      (this.#tables as Record<TableName, Map<string, unknown>>)[t] = m;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
