import {
  INSERT_ONLY,
  type KeypackageMeta,
  type KeystoreReader,
  type RowOf,
  type StagedOp,
  type TableName,
} from "./contract.js";
import { bytesToHex as toHex, hexToBytes as fromHex } from "../mls/crypto/bytes.js";

const DELETED = Symbol("deleted");
type Slot<T extends TableName> = RowOf[T] | typeof DELETED;

/**
 * A transaction's private view of the keystore: writes are staged in memory
 * (in order, for the commit) and reads see committed data overlaid with them.
 */
export class StagedKeystore {
  readonly #base: KeystoreReader;
  readonly #ops: StagedOp[] = [];
  readonly #overlay = new Map<TableName, Map<string, unknown>>();

  constructor(base: KeystoreReader) {
    this.#base = base;
  }

  /** The staged operations, in order. */
  get ops(): readonly StagedOp[] {
    return this.#ops;
  }

  #slots<T extends TableName>(table: T): Map<string, Slot<T>> {
    let m = this.#overlay.get(table);
    if (m === undefined) {
      m = new Map();
      this.#overlay.set(table, m);
    }
    return m as Map<string, Slot<T>>;
  }

  async get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined> {
    const slot = this.#slots(table).get(key);
    if (slot === DELETED) return undefined;
    if (slot !== undefined) return slot;
    return this.#base.get(table, key);
  }

  async has(table: TableName, key: string): Promise<boolean> {
    return (await this.get(table, key)) !== undefined;
  }

  async all<T extends TableName>(table: T): Promise<RowOf[T][]> {
    const slots = this.#slots(table);
    const base = await this.#base.all(table);
    const out: RowOf[T][] = [];
    const keyOf = keyFn(table);
    for (const row of base) {
      const k = keyOf(row as never);
      if (!slots.has(k)) out.push(row);
    }
    for (const slot of slots.values()) if (slot !== DELETED) out.push(slot);
    return out;
  }

  async listKeypackageMeta(): Promise<KeypackageMeta[]> {
    const slots = this.#slots("keypackages");
    const base = await this.#base.listKeypackageMeta();
    const out = slots.size === 0 ? base : base.filter((m) => !slots.has(m.ref));
    for (const slot of slots.values()) {
      if (slot === DELETED) continue;
      out.push({
        ref: slot.ref,
        credentialId: slot.credentialId,
        ciphersuite: slot.ciphersuite,
        credentialType: slot.credentialType,
        notBefore: slot.notBefore,
        notAfter: slot.notAfter,
        lastResort: slot.lastResort,
      });
    }
    return out;
  }

  async keypackageRefsForCredential(credentialId: string): Promise<string[]> {
    const slots = this.#slots("keypackages");
    const base = await this.#base.keypackageRefsForCredential(credentialId);
    const out = base.filter((ref) => !slots.has(ref));
    for (const [ref, slot] of slots)
      if (slot !== DELETED && slot.credentialId === credentialId) out.push(ref);
    return out;
  }

  async conversationsForCredential(credentialId: string): Promise<string[]> {
    const slots = this.#slots("conversations");
    const base = await this.#base.conversationsForCredential(credentialId);
    const out = base.filter((k) => !slots.has(k));
    for (const [k, slot] of slots) if (slot !== DELETED && slot.credentialId === credentialId) out.push(k);
    return out;
  }

  /** Stage an insert (insert-only tables) or a put (others). */
  write<T extends TableName>(table: T, key: string, row: RowOf[T]): void {
    const kind = INSERT_ONLY.has(table) ? "insert" : "put";
    this.#ops.push({ kind, table, key, row } as StagedOp);
    this.#slots(table).set(key, row);
  }

  delete(table: TableName, key: string): void {
    this.#ops.push({ kind: "delete", table, key } as StagedOp);
    this.#slots(table).set(key, DELETED);
  }

  /** Number of staged operations (a savepoint for rollback of one failed call). */
  mark(): number {
    return this.#ops.length;
  }

  /** Undo every op staged after `mark` (used so an error in one call does not poison the transaction). */
  rollbackTo(mark: number): void {
    if (mark >= this.#ops.length) return;
    this.#ops.length = mark;
    this.#overlay.clear();
    for (const op of this.#ops) {
      if (op.kind === "delete") this.#slots(op.table).set(op.key, DELETED);
      else this.#slots(op.table).set(op.key, op.row);
    }
  }
}

/** Primary key of a row, per table. */
export function keyFn<T extends TableName>(table: T): (row: RowOf[T]) => string {
  const f: { [K in TableName]: (row: RowOf[K]) => string } = {
    credentials: (r) => r.id,
    keypackages: (r) => r.ref,
    hpke_private_keys: (r) => toHex(r.publicKey),
    encryption_keypairs: (r) => toHex(r.publicKey),
    conversations: (r) => toHex(r.id),
    kv: (r) => r.key,
  };
  return f[table] as (row: RowOf[T]) => string;
}

/** Hex helpers, under the keystore's names: the one implementation lives with the other byte helpers. */
export { toHex, fromHex };
