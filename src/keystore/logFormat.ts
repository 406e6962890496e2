/**
 * The byte formats of the IndexedDB commit-log keystore (`indexeddb.ts`): how rows are encoded
 * in log records and snapshot chunks, the additional data that binds every sealed record to its
 * place, the bucket of a row, and the snapshot manifest. Browser-safe (WebCrypto only).
 *
 *   payload  := u8 version (1) · u32 count · entry*
 *   entry    := u8 table · u8 kind · [str key] · [row]
 *               kind 0 delete (key), 1 put (key, row), 2 put whose key is the hex of a byte
 *               field of the row (row only: key packages' private rows, conversations)
 *   str      := u8 tag (0 ASCII, 1 UTF-8, 2 lowercase hex stored as its bytes) · u32 length · bytes
 *   bytes    := u32 length · bytes
 *   number   := f64 (big endian)
 *
 * Every integer is big endian. The row encodings are per table (see `ROW_CODECS`).
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";
import { TABLES, type RowOf, type TableName } from "./contract.js";
import type { DatabaseKey } from "./databaseKey.js";
import { toHex } from "./staging.js";

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** Value of a lowercase hex digit by character code, -1 for anything else. */
const HEX_VALUE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) t[97 + i] = 10 + i;
  return t;
})();

/** A growable output buffer (one allocation per doubling, no per-field chunks). */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initial = 1024) {
    this.#buf = new Uint8Array(initial);
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#len;
  }

  #ensure(n: number): void {
    const need = this.#len + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    // Payloads carry private keys: leave no copy behind in the outgrown buffer.
    this.#buf.fill(0, 0, this.#len);
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(n: number): this {
    this.#ensure(1);
    this.#buf[this.#len++] = n;
    return this;
  }

  u32(n: number): this {
    this.#ensure(4);
    this.#view.setUint32(this.#len, n);
    this.#len += 4;
    return this;
  }

  f64(n: number): this {
    this.#ensure(8);
    this.#view.setFloat64(this.#len, n);
    this.#len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.u32(b.length);
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** A string that is usually lowercase hex (keys, ids): stored as its bytes when it is. */
  key(s: string): this {
    const n = s.length;
    if (n % 2 !== 0 || n === 0 || n > 0x20000) return this.str(s);
    // One pass: decode while checking; on a non-hex character, rewind and store the string.
    const start = this.#len;
    this.#ensure(5 + (n >> 1));
    const buf = this.#buf;
    buf[start] = 2;
    this.#view.setUint32(start + 1, n >> 1);
    let o = start + 5;
    for (let i = 0; i < n; i += 2) {
      const a = s.charCodeAt(i);
      const b = s.charCodeAt(i + 1);
      const hi = a < 128 ? (HEX_VALUE[a] as number) : -1;
      const lo = b < 128 ? (HEX_VALUE[b] as number) : -1;
      if ((hi | lo) < 0) {
        buf.fill(0, start, o);
        this.#len = start;
        return this.str(s);
      }
      buf[o++] = (hi << 4) | lo;
    }
    this.#len = o;
    return this;
  }

  str(s: string): this {
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (!ascii) return this.u8(1).bytes(utf8.encode(s));
    this.u8(0).u32(s.length);
    this.#ensure(s.length);
    for (let i = 0; i < s.length; i++) this.#buf[this.#len + i] = s.charCodeAt(i);
    this.#len += s.length;
    return this;
  }

  /** The written bytes (a copy sized exactly). */
  done(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  /** Zero what was written (after `done()`, when the bytes were secret); the writer is empty again. */
  wipe(): void {
    this.#buf.fill(0, 0, this.#len);
    this.#len = 0;
  }
}

/** Reads what `ByteWriter` wrote. Byte fields are views into the input (no copies). */
export class ByteReader {
  readonly #b: Uint8Array;
  readonly #view: DataView;
  #o = 0;

  constructor(b: Uint8Array) {
    this.#b = b;
    this.#view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  get done(): boolean {
    return this.#o === this.#b.length;
  }

  #need(n: number): void {
    if (this.#o + n > this.#b.length) throw new RangeError("truncated record");
  }

  u8(): number {
    this.#need(1);
    return this.#b[this.#o++] as number;
  }

  u32(): number {
    this.#need(4);
    const v = this.#view.getUint32(this.#o);
    this.#o += 4;
    return v;
  }

  f64(): number {
    this.#need(8);
    const v = this.#view.getFloat64(this.#o);
    this.#o += 8;
    return v;
  }

  bytes(): Uint8Array {
    const n = this.u32();
    this.#need(n);
    const v = this.#b.subarray(this.#o, this.#o + n);
    this.#o += n;
    return v;
  }

  str(): string {
    const tag = this.u8();
    const b = this.bytes();
    if (tag === 2) return toHex(b);
    if (tag === 1) return utf8d.decode(b);
    if (tag !== 0) throw new RangeError("bad string tag");
    // Short ASCII (keys, hex ids): fromCharCode beats TextDecoder's call overhead.
    if (b.length <= 1024) return String.fromCharCode.apply(null, b as unknown as number[]);
    return utf8d.decode(b);
  }
}

// ---- rows ----------------------------------------------------------------------------------

interface RowCodec<T extends TableName> {
  write(w: ByteWriter, row: RowOf[T]): void;
  read(r: ByteReader, key: string): RowOf[T];
}

const pairCodec: RowCodec<"hpke_private_keys"> & RowCodec<"encryption_keypairs"> = {
  write: (w, r) => void w.bytes(r.publicKey).bytes(r.privateKey),
  read: (r) => ({ publicKey: r.bytes(), privateKey: r.bytes() }),
};

/**
 * Per-table row encodings. Where the primary key is a string field of the row (credential id,
 * key package ref, kv key) it is not repeated: the entry's key is that field.
 */
const ROW_CODECS: { [T in TableName]: RowCodec<T> } = {
  credentials: {
    write: (w, r) =>
      void w
        .bytes(r.clientId)
        .f64(r.ciphersuite)
        .f64(r.credentialType)
        .bytes(r.publicKey)
        .bytes(r.credential)
        .bytes(r.signaturePrivateKey)
        .f64(r.createdAt),
    read: (r, key) => ({
      id: key,
      clientId: r.bytes(),
      ciphersuite: r.f64(),
      credentialType: r.f64(),
      publicKey: r.bytes(),
      credential: r.bytes(),
      signaturePrivateKey: r.bytes(),
      createdAt: r.f64(),
    }),
  },
  keypackages: {
    write: (w, r) =>
      void w
        .key(r.credentialId)
        .f64(r.ciphersuite)
        .f64(r.credentialType)
        .f64(r.notBefore)
        .f64(r.notAfter)
        .u8(r.lastResort ? 1 : 0)
        .key(r.initKey)
        .key(r.encryptionKey)
        .bytes(r.keypackage),
    read: (r, key) => ({
      ref: key,
      credentialId: r.str(),
      ciphersuite: r.f64(),
      credentialType: r.f64(),
      notBefore: r.f64(),
      notAfter: r.f64(),
      lastResort: r.u8() === 1,
      initKey: r.str(),
      encryptionKey: r.str(),
      keypackage: r.bytes(),
    }),
  },
  hpke_private_keys: pairCodec,
  encryption_keypairs: pairCodec,
  conversations: {
    write: (w, r) => void w.bytes(r.id).key(r.credentialId).bytes(r.state),
    read: (r) => ({ id: r.bytes(), credentialId: r.str(), state: r.bytes() }),
  },
  kv: {
    write: (w, r) => void w.bytes(r.value),
    read: (r, key) => ({ key, value: r.bytes() }),
  },
};

const TABLE_INDEX = new Map<TableName, number>(TABLES.map((t, i) => [t, i]));

/** Tables whose key is the hex of a byte field of the row: the key is not stored (entry kind 2). */
const DERIVED_KEY: { [T in TableName]?: (row: RowOf[TableName]) => Uint8Array } = {
  hpke_private_keys: (r) => (r as RowOf["hpke_private_keys"]).publicKey,
  encryption_keypairs: (r) => (r as RowOf["encryption_keypairs"]).publicKey,
  conversations: (r) => (r as RowOf["conversations"]).id,
};

const HEX_DIGITS = "0123456789abcdef";

/** `key === toHex(bytes)`, without building the string. */
function isHexOf(key: string, bytes: Uint8Array): boolean {
  if (key.length !== bytes.length * 2) return false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (key.charCodeAt(2 * i) !== HEX_DIGITS.charCodeAt(b >> 4)) return false;
    if (key.charCodeAt(2 * i + 1) !== HEX_DIGITS.charCodeAt(b & 15)) return false;
  }
  return true;
}

/** One row-level change: `row` undefined means "deleted". */
export interface Entry {
  table: TableName;
  key: string;
  row: RowOf[TableName] | undefined;
}

const PAYLOAD_VERSION = 1;

/**
 * Encode entries as a log record or snapshot chunk payload. The buffer is sized from the entries
 * (a deletion takes ~40 bytes, a row up to a few hundred), so a large commit is written without
 * regrowing it. The caller zeroes the result once sealed (it holds private keys).
 */
export function encodeEntries(entries: readonly Entry[], sizeHint = 1024): Uint8Array {
  let estimate = 16;
  for (const e of entries) estimate += e.row === undefined ? 48 : 256;
  const w = new ByteWriter(Math.max(sizeHint, estimate));
  w.u8(PAYLOAD_VERSION).u32(entries.length);
  for (const e of entries) {
    w.u8(TABLE_INDEX.get(e.table) as number);
    if (e.row === undefined) {
      w.u8(0).key(e.key);
      continue;
    }
    const derived = DERIVED_KEY[e.table];
    if (derived !== undefined && isHexOf(e.key, derived(e.row))) w.u8(2);
    else w.u8(1).key(e.key);
    (ROW_CODECS[e.table] as RowCodec<TableName>).write(w, e.row as never);
  }
  const out = w.done();
  w.wipe();
  return out;
}

/** Decode a payload, calling `apply` for every entry in order. Throws `RangeError` on bad bytes. */
export function decodeEntries(
  payload: Uint8Array,
  apply: (table: TableName, key: string, row: RowOf[TableName] | undefined) => void,
): number {
  const r = new ByteReader(payload);
  if (r.u8() !== PAYLOAD_VERSION) throw new RangeError("unknown payload version");
  const n = r.u32();
  for (let i = 0; i < n; i++) {
    const table = TABLES[r.u8()];
    if (table === undefined) throw new RangeError("unknown table");
    const kind = r.u8();
    if (kind === 2) {
      const derived = DERIVED_KEY[table];
      if (derived === undefined) throw new RangeError("no derived key for this table");
      const row = (ROW_CODECS[table] as RowCodec<TableName>).read(r, "");
      apply(table, toHex(derived(row)), row);
      continue;
    }
    const key = r.str();
    if (kind === 0) apply(table, key, undefined);
    else if (kind === 1) apply(table, key, (ROW_CODECS[table] as RowCodec<TableName>).read(r, key));
    else throw new RangeError("unknown entry kind");
  }
  if (!r.done) throw new RangeError("trailing bytes");
  return n;
}

// ---- buckets -------------------------------------------------------------------------------

/** FNV-1a over the table index and the key: which snapshot bucket a row lives in (not secret). */
export function bucketHash(table: TableName, key: string): number {
  let h = 0x811c9dc5 ^ (TABLE_INDEX.get(table) as number);
  h = Math.imul(h, 0x01000193);
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// ---- additional data -----------------------------------------------------------------------

function aad(label: string, ...fields: number[]): Uint8Array<ArrayBuffer> {
  const l = utf8.encode(label);
  const out = new Uint8Array(l.length + 1 + 8 * fields.length);
  out.set(l, 0);
  const view = new DataView(out.buffer);
  fields.forEach((f, i) => view.setFloat64(l.length + 1 + 8 * i, f));
  return out;
}

/** A log record: bound to its sequence number (moved, reordered or replayed records fail). */
export const logAad = (seq: number): Uint8Array<ArrayBuffer> => aad("mls-keypackages/idb-log/v1", seq);

/** A snapshot chunk: bound to its id, its bucket and the bucket count. */
export const chunkAad = (id: number, bucket: number, buckets: number): Uint8Array<ArrayBuffer> =>
  aad("mls-keypackages/idb-chunk/v1", id, bucket, buckets);

/** The head's manifest: bound to the head's clear fields. */
export const headAad = (seq: number, keyEpoch: number, compactions: number): Uint8Array<ArrayBuffer> =>
  aad("mls-keypackages/idb-head/v1", seq, keyEpoch, compactions);

// ---- manifest ------------------------------------------------------------------------------

/**
 * Which chunk holds each bucket of the snapshot: `ids[b]` (0: empty bucket) and its payload size.
 * The snapshot holds every row as of log sequence number `seq`.
 */
export interface Manifest {
  seq: number;
  buckets: number;
  nextId: number;
  ids: number[];
  sizes: number[];
}

export function emptyManifest(): Manifest {
  return { seq: 0, buckets: 1, nextId: 1, ids: [0], sizes: [0] };
}

export function encodeManifest(m: Manifest): Uint8Array {
  const w = new ByteWriter(32 + 16 * m.buckets);
  w.u8(1).f64(m.seq).u32(m.buckets).f64(m.nextId);
  for (let b = 0; b < m.buckets; b++) w.f64(m.ids[b] as number).u32(m.sizes[b] as number);
  return w.done();
}

export function decodeManifest(bytes: Uint8Array): Manifest {
  const r = new ByteReader(bytes);
  if (r.u8() !== 1) throw new RangeError("unknown manifest version");
  const seq = r.f64();
  const buckets = r.u32();
  const nextId = r.f64();
  const ids: number[] = [];
  const sizes: number[] = [];
  for (let b = 0; b < buckets; b++) {
    ids.push(r.f64());
    sizes.push(r.u32());
  }
  if (!r.done || buckets < 1 || (buckets & (buckets - 1)) !== 0) throw new RangeError("bad manifest");
  return { seq, buckets, nextId, ids, sizes };
}

// ---- key -----------------------------------------------------------------------------------

/**
 * The AES-256-GCM key of the database, HKDF-SHA-256 from the `DatabaseKey`. Same derivation (and
 * so the same key) as `deriveRecordKeys(...).aes` in encryption.ts, which older databases used.
 */
export async function deriveAesKey(key: DatabaseKey): Promise<CryptoKey> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined)
    throw new MlsKeypackagesError(ErrorCode.KeystoreError, "WebCrypto (crypto.subtle) is not available");
  const raw = key.bytes();
  try {
    const base = await subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "HKDF", false, ["deriveKey"]);
    return await subtle.deriveKey(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: new Uint8Array(0),
        info: utf8.encode("mls-keypackages/record-aes-256-gcm/v1"),
      },
      base,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
  } finally {
    raw.fill(0);
  }
}
