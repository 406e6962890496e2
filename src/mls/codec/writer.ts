/**
 * TLS presentation-language writer (RFC 9420 §2.1) into one growing buffer. Vectors are
 * written in place: the body goes after a 4-byte gap, then moves down once its minimal
 * varint length (§2.1.2) is known.
 */

const MAX_VARINT = 0x3fffffff;

/**
 * Scratch buffers of finished writers, reused by the next ones: an encoding then costs one
 * allocation (`finish()`'s exact-size copy) instead of two or more, which matters on hot paths
 * that encode dozens of small structures. A buffer is zeroed up to what was written before it
 * is pooled (encodings may hold secrets); buffers larger than `POOLED_MAX` are left to the GC.
 */
const pool: Uint8Array[] = [];
const POOL_SIZE = 8;
const POOLED_MIN = 1024;
const POOLED_MAX = 256 * 1024;
const FINISHED = new Uint8Array(0);

/** A pooled buffer of at least `capacity` bytes (all zero), if one is free. */
function fromPool(capacity: number): Uint8Array | undefined {
  for (let i = pool.length - 1; i >= 0; i--) {
    const b = pool[i] as Uint8Array;
    if (b.length >= capacity) {
      pool[i] = pool[pool.length - 1] as Uint8Array;
      pool.pop();
      return b;
    }
  }
  return undefined;
}

export class Writer {
  #buf: Uint8Array;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = fromPool(initialCapacity) ?? new Uint8Array(Math.max(initialCapacity, POOLED_MIN));
  }

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    const at = this.#len;
    const need = at + n;
    if (need > this.#buf.length) {
      if (this.#buf === FINISHED) throw new TypeError("Writer used after finish()");
      const next = new Uint8Array(Math.max(need, this.#buf.length * 2));
      next.set(this.#buf.subarray(0, at));
      this.#buf.fill(0, 0, at);
      this.#buf = next;
    }
    this.#len = need;
    return at;
  }

  u8(v: number): this {
    // Reserve first: `#reserve` may replace `#buf`.
    const at = this.#reserve(1);
    this.#buf[at] = v;
    return this;
  }

  u16(v: number): this {
    const at = this.#reserve(2);
    this.#buf[at] = v >>> 8;
    this.#buf[at + 1] = v;
    return this;
  }

  u32(v: number): this {
    const at = this.#reserve(4);
    const b = this.#buf;
    b[at] = v >>> 24;
    b[at + 1] = v >>> 16;
    b[at + 2] = v >>> 8;
    b[at + 3] = v;
    return this;
  }

  u64(v: bigint): this {
    return this.u32(Number((v >> 32n) & 0xffffffffn)).u32(Number(v & 0xffffffffn));
  }

  /** RFC 9420 §2.1.2 variable-length integer, shortest form. */
  varint(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > MAX_VARINT) throw new RangeError(`varint out of range: ${n}`);
    if (n < 0x40) return this.u8(n);
    if (n < 0x4000) return this.u16(0x4000 | n);
    return this.u32((0x80000000 | n) >>> 0);
  }

  /** Raw bytes, no length. */
  raw(b: Uint8Array): this {
    const at = this.#reserve(b.length);
    this.#buf.set(b, at);
    return this;
  }

  /** `opaque data<V>`. */
  vec(b: Uint8Array): this {
    return this.varint(b.length).raw(b);
  }

  /** A vector whose body `body` writes into this writer (`T items<V>`, or any struct<V>). */
  vecWith(body: (w: this) => void): this {
    const gap = this.#reserve(4);
    body(this);
    return this.#closeVector(gap);
  }

  /** `T items<V>`. */
  vecOf<T>(items: readonly T[], item: (w: this, v: T) => void): this {
    const gap = this.#reserve(4);
    for (let i = 0; i < items.length; i++) item(this, items[i] as T);
    return this.#closeVector(gap);
  }

  /** Ends a vector whose body follows the 4-byte gap at `gap`: its minimal varint length there. */
  #closeVector(gap: number): this {
    const start = gap + 4;
    const len = this.#len - start;
    if (len > MAX_VARINT) throw new RangeError("vector too long");
    const head = len < 0x40 ? 1 : len < 0x4000 ? 2 : 4;
    const b = this.#buf;
    if (head === 1) b[gap] = len;
    else if (head === 2) {
      b[gap] = 0x40 | (len >>> 8);
      b[gap + 1] = len;
    } else {
      b[gap] = 0x80 | (len >>> 24);
      b[gap + 1] = len >>> 16;
      b[gap + 2] = len >>> 8;
      b[gap + 3] = len;
    }
    if (head !== 4) {
      b.copyWithin(gap + head, start, this.#len);
      this.#len -= 4 - head;
      b.fill(0, this.#len, this.#len + 4 - head); // the vacated tail: pooled buffers stay zero past #len
    }
    return this;
  }

  /** `optional<T>`. */
  optional<T>(v: T | undefined, item: (w: this, v: T) => void): this {
    if (v === undefined) return this.u8(0);
    this.u8(1);
    item(this, v);
    return this;
  }

  /** The written bytes (a copy sized exactly). The writer cannot be used afterwards. */
  finish(): Uint8Array {
    const buf = this.#buf;
    if (buf === FINISHED) throw new TypeError("Writer.finish() called twice");
    const out = buf.slice(0, this.#len);
    buf.fill(0, 0, this.#len);
    this.#buf = FINISHED;
    this.#len = 0;
    if (buf.length <= POOLED_MAX && pool.length < POOL_SIZE) pool.push(buf);
    return out;
  }
}

/** Encodes one value with `item`. */
export function encode<T>(v: T, item: (w: Writer, v: T) => void, initialCapacity?: number): Uint8Array {
  const w = new Writer(initialCapacity);
  item(w, v);
  return w.finish();
}
