/**
 * Strict TLS presentation-language reader (RFC 9420 §2.1): minimal variable-length integers
 * only (§2.1.2), optional<T> presence 0 or 1 only (§2.1.1), no read past the end, and a size
 * cap on the whole input. Byte fields are views into the input (no copy).
 */
import { DecodeError } from "./errors.js";

/** Default cap on one decoded MLS object: 16 MiB (a large group's ratchet tree fits). */
export const DEFAULT_MAX_SIZE = 16 * 1024 * 1024;

export class Reader {
  readonly bytes: Uint8Array;
  offset: number;
  end: number;

  constructor(bytes: Uint8Array, offset = 0, end = bytes.length) {
    this.bytes = bytes;
    this.offset = offset;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  #need(n: number): number {
    const at = this.offset;
    if (n > this.end - at)
      throw new DecodeError("§2.1 truncated", `needs ${n} more bytes, ${this.end - at} left`);
    this.offset = at + n;
    return at;
  }

  u8(): number {
    return this.bytes[this.#need(1)] as number;
  }

  u16(): number {
    const at = this.#need(2);
    return ((this.bytes[at] as number) << 8) | (this.bytes[at + 1] as number);
  }

  u32(): number {
    const at = this.#need(4);
    const b = this.bytes;
    return (
      (b[at] as number) * 0x1000000 +
      (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number))
    );
  }

  u64(): bigint {
    const hi = this.u32();
    const lo = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** RFC 9420 §2.1.2 variable-length integer; the shortest encoding only. */
  varint(): number {
    const first = this.u8();
    const prefix = first >> 6;
    if (prefix === 0) return first;
    if (prefix === 1) {
      const v = ((first & 0x3f) << 8) | this.u8();
      if (v < 0x40) throw new DecodeError("§2.1.2 minimal varint", "a 2-byte varint holds a value below 64");
      return v;
    }
    if (prefix === 2) {
      const at = this.#need(3);
      const b = this.bytes;
      const v =
        (first & 0x3f) * 0x1000000 +
        (((b[at] as number) << 16) | ((b[at + 1] as number) << 8) | (b[at + 2] as number));
      if (v < 0x4000)
        throw new DecodeError("§2.1.2 minimal varint", "a 4-byte varint holds a value below 16384");
      return v;
    }
    throw new DecodeError("§2.1.2 varint length", "the 8-byte varint form is not allowed in MLS");
  }

  /** `n` raw bytes (a view). */
  raw(n: number): Uint8Array {
    const at = this.#need(n);
    return this.bytes.subarray(at, at + n);
  }

  /** `opaque data<V>`: a view of the vector's bytes. */
  vec(): Uint8Array {
    return this.raw(this.varint());
  }

  /** `T items<V>`: the vector's bytes read item by item until exactly its end. */
  vecOf<T>(item: (r: Reader) => T): T[] {
    const len = this.varint();
    const start = this.#need(len);
    const stop = start + len;
    const outerEnd = this.end;
    const out: T[] = [];
    this.offset = start;
    this.end = stop;
    try {
      while (this.offset < stop) out.push(item(this));
    } finally {
      this.end = outerEnd;
    }
    this.offset = stop;
    return out;
  }

  /** `optional<T>`: presence octet 0 (absent) or 1 (present), nothing else (§2.1.1). */
  optional<T>(item: (r: Reader) => T): T | undefined {
    const present = this.u8();
    if (present === 0) return undefined;
    if (present !== 1) throw new DecodeError("§2.1.1 optional presence", `presence octet ${present}`);
    return item(this);
  }

  /** Throws unless every byte up to `end` was read. */
  finish(): void {
    if (this.offset !== this.end)
      throw new DecodeError(
        "§2.1 trailing bytes",
        `${this.end - this.offset} bytes after the end of the value`,
      );
  }
}

/**
 * Decodes exactly one value filling all of `bytes` (no trailing bytes, nothing missing),
 * refusing inputs over `maxSize` bytes before reading them.
 */
export function decodeExact<T>(bytes: Uint8Array, item: (r: Reader) => T, maxSize = DEFAULT_MAX_SIZE): T {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("expected a Uint8Array");
  if (bytes.length > maxSize)
    throw new DecodeError("§2.1 size cap", `${bytes.length} bytes exceed the cap of ${maxSize}`);
  const r = new Reader(bytes);
  const v = item(r);
  r.finish();
  return v;
}
