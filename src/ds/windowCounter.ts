/**
 * Fixed-window counters per key (per process, in memory), for the limits that
 * `@fastify/rate-limit` cannot count: packages and bytes per client, failed authentications
 * per address. Memory is bounded: expired windows are dropped, and past `maxKeys` the oldest
 * keys go first.
 */
export class WindowCounter {
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, { start: number; used: number }>();

  constructor(windowMs: number, options: { maxKeys?: number; now?: () => number } = {}) {
    this.#windowMs = windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  #entry(key: string): { start: number; used: number } {
    const now = this.#now();
    let e = this.#windows.get(key);
    if (e === undefined || now - e.start >= this.#windowMs) {
      if (e !== undefined) this.#windows.delete(key);
      if (this.#windows.size >= this.#maxKeys) this.#sweep(now);
      e = { start: now, used: 0 };
      this.#windows.set(key, e);
    }
    return e;
  }

  #sweep(now: number): void {
    for (const [k, e] of this.#windows) if (now - e.start >= this.#windowMs) this.#windows.delete(k);
    // Still full: drop the oldest (Map keeps insertion order).
    for (const k of this.#windows.keys()) {
      if (this.#windows.size < this.#maxKeys) break;
      this.#windows.delete(k);
    }
  }

  /** Used so far in the key's current window. */
  used(key: string): number {
    const e = this.#windows.get(key);
    if (e === undefined || this.#now() - e.start >= this.#windowMs) return 0;
    return e.used;
  }

  /** Milliseconds until the key's window ends. */
  retryAfterMs(key: string): number {
    const e = this.#windows.get(key);
    return e === undefined ? 0 : Math.max(0, e.start + this.#windowMs - this.#now());
  }

  /** Count `amount` unless that would pass `max`; false (nothing counted) then. */
  take(key: string, amount: number, max: number): boolean {
    const e = this.#entry(key);
    if (e.used + amount > max) return false;
    e.used += amount;
    return true;
  }

  /** Count `amount` unconditionally. */
  add(key: string, amount = 1): void {
    this.#entry(key).used += amount;
  }
}
