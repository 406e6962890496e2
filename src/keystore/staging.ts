import {
  INSERT_ONLY,
  type KeypackageMeta,
  type KeystoreReader,
  type RowOf,
  type StagedOp,
  type TableName,
} from "./contract.js";

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

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[65 + i] = 10 + i;
  NIBBLE[97 + i] = 10 + i;
}

/** ASCII codes of HEX, two per byte value. */
const HEX_CODES = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  HEX_CODES[2 * i] = (HEX[i] as string).charCodeAt(0);
  HEX_CODES[2 * i + 1] = (HEX[i] as string).charCodeAt(1);
}
// ASCII bytes decode the same in every single-byte encoding; "latin1" is windows-1252 in WHATWG.
const ASCII = new TextDecoder("latin1");

/**
 * Lowercase hex (table-driven: this runs for every key of every row). Decoded from one byte
 * buffer, so the result is a flat string: a `+=` chain would stay a rope of 2n cons cells for
 * as long as the string lives as a row key.
 */
export function toHex(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n < 8) {
    let s = "";
    for (let i = 0; i < n; i++) s += HEX[bytes[i] as number];
    return s;
  }
  const out = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    const v = (bytes[i] as number) << 1;
    out[2 * i] = HEX_CODES[v] as number;
    out[2 * i + 1] = HEX_CODES[v + 1] as number;
  }
  return ASCII.decode(out);
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new TypeError("invalid hex string");
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const c1 = hex.charCodeAt(2 * i);
    const c2 = hex.charCodeAt(2 * i + 1);
    const hi = c1 < 128 ? (NIBBLE[c1] as number) : -1;
    const lo = c2 < 128 ? (NIBBLE[c2] as number) : -1;
    if (hi < 0 || lo < 0) throw new TypeError("invalid hex string");
    out[i] = (hi << 4) | lo;
  }
  return out;
}
