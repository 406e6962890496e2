/**
 * TLS presentation-language writer (RFC 9420 §2.1) into one growing buffer. Vectors are
 * written in place: the body goes after a 4-byte gap, then moves down once its minimal
 * varint length (§2.1.2) is known.
 */

const MAX_VARINT = 0x3fffffff;

export class Writer {
  #buf: Uint8Array;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(initialCapacity);
  }

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    const at = this.#len;
    const need = at + n;
    if (need > this.#buf.length) {
      const next = new Uint8Array(Math.max(need, this.#buf.length * 2));
      next.set(this.#buf.subarray(0, at));
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
    const start = gap + 4;
    body(this);
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
    }
    return this;
  }

  /** `T items<V>`. */
  vecOf<T>(items: readonly T[], item: (w: this, v: T) => void): this {
    return this.vecWith((w) => {
      for (const v of items) item(w, v);
    });
  }

  /** `optional<T>`. */
  optional<T>(v: T | undefined, item: (w: this, v: T) => void): this {
    if (v === undefined) return this.u8(0);
    this.u8(1);
    item(this, v);
    return this;
  }

  /** The written bytes (a copy sized exactly). */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Encodes one value with `item`. */
export function encode<T>(v: T, item: (w: Writer, v: T) => void, initialCapacity?: number): Uint8Array {
  const w = new Writer(initialCapacity);
  item(w, v);
  return w.finish();
}
