/**
 * The lock that serializes transactions on one IndexedDB keystore across browsing contexts (tabs,
 * workers) of an origin: a Web Lock (`navigator.locks`) named after the database, plus a FIFO for
 * the callers of this connection.
 *
 * The Web Lock is sticky: after a transaction the connection keeps it, so the next transaction of
 * the same tab starts without a lock round trip and without reading the log tail (nobody else can
 * have committed meanwhile). It lets go when another connection asks for it (a "want" message on
 * the keystore's BroadcastChannel, repeated until granted), when the page is hidden or frozen,
 * after `idleMs` without transactions, and at close. A connection that takes the lock afresh
 * first runs `onAcquired` (reading the log tail).
 *
 * Without Web Locks (old browsers, Node.js) only this connection's callers are serialized, and
 * `onAcquired` runs before every transaction; commits stay safe because the keystore checks, in the
 * IndexedDB transaction that appends a log record, that no other record was appended meanwhile.
 */
import { ErrorCode, MlsKeypackagesError } from "../errors.js";

/** The part of the Web Locks API (`navigator.locks`) used here. */
export interface LockManagerLike {
  request(name: string, callback: (lock: unknown) => Promise<unknown>): Promise<unknown>;
}

/** What `Database` needs to serialize transactions: `acquire()` resolves to a release function. */
export interface TransactionLock {
  acquire(): Promise<() => void>;
}

export interface SharedLockOptions {
  /** Web Lock name. */
  name: string;
  /** Web Locks; undefined: serialize this connection only. */
  locks: LockManagerLike | undefined;
  /** Ask the current holder to let go (broadcast); undefined: no channel, the lock is not kept. */
  askHolder: (() => void) | undefined;
  /** How long an idle connection keeps the Web Lock, ms. */
  idleMs: number;
  /** Catch up with other connections; runs when the lock is taken afresh. */
  onAcquired: () => Promise<void>;
}

type Timer = ReturnType<typeof setTimeout>;

/** A timer that does not keep Node.js alive (browsers: unchanged). */
export function unref(t: Timer): Timer {
  (t as { unref?: () => void }).unref?.();
  return t;
}

/** The page's Web Locks, when there are any. */
export function defaultLockManager(): LockManagerLike | undefined {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  return locks !== undefined && typeof locks.request === "function" ? locks : undefined;
}

export class SharedLock implements TransactionLock {
  readonly #o: SharedLockOptions;
  #queue: Promise<void> = Promise.resolve();
  /** Callers waiting for the local FIFO. */
  #waiting = 0;
  /** A caller holds the lock. */
  #active = false;
  /** This connection holds the Web Lock. */
  #held = false;
  #letGo: (() => void) | undefined;
  /** Another connection asked for the Web Lock while we used it. */
  #wanted = false;
  #idle: Timer | undefined;
  #closed = false;
  readonly #onHide = (): void => {
    if (this.#hidden() && !this.#active && this.#waiting === 0) this.#drop();
  };

  constructor(options: SharedLockOptions) {
    this.#o = options;
    const doc = (globalThis as { document?: EventTarget }).document;
    const win = (globalThis as { addEventListener?: unknown }).addEventListener;
    if (doc !== undefined && typeof doc.addEventListener === "function") {
      doc.addEventListener("visibilitychange", this.#onHide);
      doc.addEventListener("freeze", this.#onHide);
    }
    if (typeof win === "function") globalThis.addEventListener("pagehide", this.#onHide);
  }

  /** A caller of this connection holds the lock (a transaction, a commit, a compaction). */
  get active(): boolean {
    return this.#active;
  }

  /** This connection holds the Web Lock: no other connection can commit. */
  get exclusive(): boolean {
    return this.#held;
  }

  /** Whether Web Locks are in use. */
  get crossContext(): boolean {
    return this.#o.locks !== undefined;
  }

  async acquire(): Promise<() => void> {
    const releaseLocal = await this.#enqueue();
    this.#active = true;
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    try {
      // Closed: no lock to take; whatever the caller does next fails with KeystoreClosed.
      if (!this.#held && !this.#closed) {
        if (this.#o.locks !== undefined) await this.#take(this.#o.locks);
        await this.#o.onAcquired();
      }
    } catch (e) {
      this.#active = false;
      releaseLocal();
      this.#drop();
      throw e;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#active = false;
      releaseLocal();
      this.#afterRelease();
    };
  }

  /** Another connection asked for the Web Lock. */
  onWant(): void {
    if (!this.#held) return;
    if (!this.#active && this.#waiting === 0) this.#drop();
    else this.#wanted = true;
  }

  /** Let go of the Web Lock now if idle, or when the current holder releases. No new acquisitions. */
  close(): void {
    this.#closed = true;
    const doc = (globalThis as { document?: EventTarget }).document;
    if (doc !== undefined && typeof doc.removeEventListener === "function") {
      doc.removeEventListener("visibilitychange", this.#onHide);
      doc.removeEventListener("freeze", this.#onHide);
    }
    if (typeof (globalThis as { removeEventListener?: unknown }).removeEventListener === "function")
      globalThis.removeEventListener("pagehide", this.#onHide);
    if (!this.#active) this.#drop();
  }

  #enqueue(): Promise<() => void> {
    this.#waiting++;
    let release!: () => void;
    const next = new Promise<void>((resolve) => {
      release = resolve;
    });
    const ready = this.#queue.then(() => {
      this.#waiting--;
      return release;
    });
    this.#queue = this.#queue.then(() => next);
    return ready;
  }

  #take(locks: LockManagerLike): Promise<void> {
    return new Promise<void>((granted, failed) => {
      let timer: Timer | undefined;
      let got = false;
      const ask = (): void => {
        this.#o.askHolder?.();
        timer = unref(setTimeout(ask, 100));
      };
      locks
        .request(this.#o.name, () => {
          got = true;
          if (timer !== undefined) clearTimeout(timer);
          this.#held = true;
          this.#wanted = false;
          return new Promise<void>((letGo) => {
            this.#letGo = letGo;
            granted();
          });
        })
        .catch((e: unknown) => {
          if (timer !== undefined) clearTimeout(timer);
          if (!got)
            failed(
              new MlsKeypackagesError(
                ErrorCode.KeystoreError,
                "cannot take the keystore's Web Lock",
                {},
                { cause: e },
              ),
            );
        });
      ask();
    });
  }

  #afterRelease(): void {
    if (!this.#held) return;
    // Someone else asked: let go even if our own callers queue (they ask again, after them).
    if (this.#wanted || this.#closed || this.#o.askHolder === undefined || this.#hidden()) {
      this.#drop();
      return;
    }
    if (this.#waiting > 0) return;
    this.#idle = unref(
      setTimeout(() => {
        this.#idle = undefined;
        if (!this.#active && this.#waiting === 0) this.#drop();
      }, this.#o.idleMs),
    );
  }

  #drop(): void {
    if (this.#idle !== undefined) clearTimeout(this.#idle);
    this.#idle = undefined;
    if (!this.#held) return;
    this.#held = false;
    this.#wanted = false;
    const letGo = this.#letGo;
    this.#letGo = undefined;
    letGo?.();
  }

  #hidden(): boolean {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    return doc?.visibilityState === "hidden";
  }
}
