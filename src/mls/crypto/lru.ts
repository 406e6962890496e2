/**
 * Key caches of the crypto providers: a tiny LRU map (insertion-ordered Map, oldest evicted
 * first) of imported keys by their raw bytes, and in front of it an identity cache by array.
 * @module
 */
import { constantTimeEqual } from "./bytes.js";

export class LruCache<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();

  constructor(max: number) {
    if (!(max > 0)) throw new RangeError("LruCache: max must be positive");
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      // refresh recency
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    if (this.#map.has(key)) this.#map.delete(key);
    else if (this.#map.size >= this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
    this.#map.set(key, value);
  }

  /** Lookup without refreshing recency. */
  peek(key: string): V | undefined {
    return this.#map.get(key);
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }
}

/** Cache key for raw bytes: one UTF-16 code unit per byte (cheap, exact). */
export function bytesKey(tag: string, b: Uint8Array): string {
  let s = tag;
  // String.fromCharCode.apply is fastest for small keys (<= 133 bytes here).
  s += String.fromCharCode.apply(null, b as unknown as number[]);
  return s;
}

/**
 * Values cached by the identity of a byte array: a stored key signs or verifies again and again
 * with the same array, so it is found without building a `bytesKey`. Each entry keeps a copy of
 * the bytes its value was made from, compared in constant time (they may be a private key): an
 * array changed in place since (zeroed, reused) misses. The copy lives as long as the array.
 */
export class ArrayIdentityCache<V> {
  #map = new WeakMap<Uint8Array, { readonly tag: string; readonly bytes: Uint8Array; readonly value: V }>();

  get(tag: string, array: Uint8Array): V | undefined {
    const hit = this.#map.get(array);
    return hit !== undefined && hit.tag === tag && constantTimeEqual(hit.bytes, array)
      ? hit.value
      : undefined;
  }

  set(tag: string, array: Uint8Array, value: V): void {
    this.#map.set(array, { tag, bytes: Uint8Array.from(array), value });
  }

  /** The value cached for `array`, else `make()`'s (then cached). */
  getOrSet(tag: string, array: Uint8Array, make: () => V): V {
    let value = this.get(tag, array);
    if (value === undefined) {
      value = make();
      this.set(tag, array, value);
    }
    return value;
  }

  /** Forget `array`'s entry if it holds `value`. */
  deleteIf(array: Uint8Array, value: V): void {
    if (this.#map.get(array)?.value === value) this.#map.delete(array);
  }

  clear(): void {
    this.#map = new WeakMap();
  }
}
