/**
 * Tiny LRU map (insertion-ordered Map, oldest evicted first). Used to cache
 * imported key objects keyed by their raw bytes.
 * @module
 */
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
