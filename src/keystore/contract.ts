/**
 * The keystore contract: every backend (in-memory, SQLite, IndexedDB) implements
 * `Keystore`. Writes never go to a backend one by one: a transaction stages them
 * (see `staging.ts`) and hands the ordered list to `commit()`, which applies all
 * of them atomically or none.
 *
 * Keys of every table are lowercase hex strings (or plain strings for `kv`).
 */

import { bytesEqual } from "../mls/crypto/bytes.js";

/** Current schema version of the persistent backends. */
export const SCHEMA_VERSION = 2;

export type TableName =
  "credentials" | "keypackages" | "hpke_private_keys" | "encryption_keypairs" | "conversations" | "kv";

export const TABLES: readonly TableName[] = [
  "credentials",
  "keypackages",
  "hpke_private_keys",
  "encryption_keypairs",
  "conversations",
  "kv",
];

/** A credential with its signature key pair. Key: `id` (hex SHA-256 of the signature public key). */
export interface CredentialRow {
  id: string;
  clientId: Uint8Array;
  ciphersuite: number;
  credentialType: number;
  /** Signature public key (raw / SEC1 uncompressed). */
  publicKey: Uint8Array;
  /** TLS-encoded MLS `Credential` (RFC 9420 §5.3). */
  credential: Uint8Array;
  /** Secret. */
  signaturePrivateKey: Uint8Array;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** Public metadata of a key package, enough to build a `KeypackageRef` without parsing. */
export interface KeypackageMeta {
  /** hex of the RFC 9420 §5.2 KeyPackageRef. */
  ref: string;
  /** The `CredentialRow.id` it was generated from. */
  credentialId: string;
  ciphersuite: number;
  credentialType: number;
  /** Seconds since the epoch (as in the MLS Lifetime extension). */
  notBefore: number;
  notAfter: number;
  lastResort: boolean;
}

/** Key: `ref`. */
/** The metadata columns of a key package row (what `listKeypackageMeta` returns). */
export function keypackageMetaOf(r: KeypackageMeta): KeypackageMeta {
  return {
    ref: r.ref,
    credentialId: r.credentialId,
    ciphersuite: r.ciphersuite,
    credentialType: r.credentialType,
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    lastResort: r.lastResort,
  };
}

export interface KeypackageRow extends KeypackageMeta {
  /** TLS-encoded `KeyPackage`. Not secret, but stored encrypted where the backend encrypts. */
  keypackage: Uint8Array;
  /** hex of the init public key (key of its `hpke_private_keys` row). */
  initKey: string;
  /** hex of the leaf encryption public key (key of its `encryption_keypairs` row). */
  encryptionKey: string;
}

/** HPKE init private key of a key package. Key: hex of `publicKey`. */
export interface HpkePrivateKeyRow {
  publicKey: Uint8Array;
  /** Secret. */
  privateKey: Uint8Array;
}

/** Leaf node encryption key pair. Key: hex of `publicKey`. */
export interface EncryptionKeypairRow {
  publicKey: Uint8Array;
  /** Secret. */
  privateKey: Uint8Array;
}

/** Persisted conversation (MLS group) state. Key: hex of `id`. */
export interface ConversationRow {
  id: Uint8Array;
  /** The `CredentialRow.id` the conversation is joined with. */
  credentialId: string;
  /** Our own versioned wrapper around the engine's state (secret). */
  state: Uint8Array;
}

/** Small key–value table. Key: `key`. */
export interface KvRow {
  key: string;
  value: Uint8Array;
}

export interface RowOf {
  credentials: CredentialRow;
  keypackages: KeypackageRow;
  hpke_private_keys: HpkePrivateKeyRow;
  encryption_keypairs: EncryptionKeypairRow;
  conversations: ConversationRow;
  kv: KvRow;
}

/** Every row by table and key: the in-memory view of the memory and IndexedDB keystores. */
export type Tables = { [T in TableName]: Map<string, RowOf[T]> };

/** One empty Map per table (`Tables`, or any other per-table map). */
export function emptyTableMaps<M extends { [T in TableName]: Map<string, unknown> } = Tables>(): M {
  return Object.fromEntries(TABLES.map((t) => [t, new Map()])) as M;
}

/** Tables whose rows may never change once written (CoreCrypto's `AlreadyExists`). */
export const INSERT_ONLY: ReadonlySet<TableName> = new Set([
  "keypackages",
  "hpke_private_keys",
  "encryption_keypairs",
]);

/**
 * One staged write.
 * - `insert`: insert-only tables. Fails the whole commit with `AlreadyExists` if a row with the
 *   same key and a different value exists (same value: no-op).
 * - `put`: insert or replace (credentials, conversations, kv).
 * - `delete`: no-op when absent.
 */
export type StagedOp = {
  [T in TableName]:
    | { kind: "insert"; table: T; key: string; row: RowOf[T] }
    | { kind: "put"; table: T; key: string; row: RowOf[T] }
    | { kind: "delete"; table: T; key: string };
}[TableName];

export type RowCounts = Record<TableName, number>;

/**
 * Read side of a keystore. All reads see committed data only. Returned rows (and rows passed
 * to `commit`) are read-only: backends may share them instead of copying.
 */
export interface KeystoreReader {
  get<T extends TableName>(table: T, key: string): Promise<RowOf[T] | undefined>;
  /** Every row of a table (avoid on keypackages: use `listKeypackageMeta`). */
  all<T extends TableName>(table: T): Promise<RowOf[T][]>;
  /** Metadata of every key package, without loading or decrypting package bytes. */
  listKeypackageMeta(): Promise<KeypackageMeta[]>;
  /** Keys of the key packages generated from one credential (index on credential id). */
  keypackageRefsForCredential(credentialId: string): Promise<string[]>;
  /** Keys of conversations joined with one credential. */
  conversationsForCredential(credentialId: string): Promise<string[]>;
  /** Row count per table (inspection / tests). */
  counts(): Promise<RowCounts>;
}

export interface Keystore extends KeystoreReader {
  /** Human-readable backend name, e.g. "memory", "sqlite", "indexeddb". */
  readonly backend: string;
  /** Apply every op in order, atomically. Throws `AlreadyExists` (and applies nothing) on a conflicting insert. */
  commit(ops: readonly StagedOp[]): Promise<void>;
  close(): Promise<void>;
}

/** Deep equality of two rows (byte arrays compared by content). */
export function rowsEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) return bytesEqual(a, b);
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!rowsEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
